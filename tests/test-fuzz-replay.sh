#!/bin/bash
# Every input of each fuzz target's corpus (tests/fuzz/corpus/<target>/: seeds and every crash
# input ever found) replayed through that target (tests/fuzz/replay.c, built with the normal
# compiler): pass means no crash, no sanitizer report and no broken invariant. Under
# make check-valgrind, FUZZ_REPLAY_WRAPPER runs each replay under valgrind.
. "$CABACK_SRCDIR/tests/lib.sh"

targets=${FUZZ_TARGETS:-keyid}
corpora="$CABACK_SRCDIR/tests/fuzz/corpus"

for t in $targets; do
    prog="$CABACK_BUILDDIR/tests/fuzz/replay-$t"
    corpus="$corpora/$t"
    if [ ! -x "$prog" ]; then
        not_ok "fuzz-$t: $prog was not built"
        continue
    fi
    n=$(find "$corpus" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
    if [ "$n" -eq 0 ]; then
        not_ok "fuzz-$t: corpus $corpus is empty or missing"
        continue
    fi
    # shellcheck disable=SC2086
    run ${FUZZ_REPLAY_WRAPPER:-} "$prog" "$corpus"
    if [ "$STATUS" -eq 0 ] && grep -qx "replayed $n inputs" "$OUT"; then
        ok "fuzz-$t: $n corpus inputs replayed, no crash"
    else
        not_ok "fuzz-$t: replay of $corpus failed (exit $STATUS)"
        diag "last input started: $(grep -v '^replayed ' "$OUT" | tail -n 1)" \
            "stderr:" "$(tail -c 4000 "$ERR")"
    fi
done

# A corpus whose target is not built yet (its library code is still being written) is a skip.
for dir in "$corpora"/*/; do
    t=$(basename "$dir")
    case " $targets " in
    *" $t "*) ;;
    *) skip "fuzz-$t: corpus replay" "target $t is not in FUZZ_TARGETS yet" ;;
    esac
done

done_testing
