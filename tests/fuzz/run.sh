#!/bin/sh
# make fuzz: build each libFuzzer target (tests/fuzz/fuzz-TARGET.c) with clang against the
# library's sources, and run it for SECONDS on its seed corpus. New interesting inputs go to a
# working corpus in the build folder (WORK/corpus-TARGET); crashes, leaks and timeouts are saved
# into the source corpus (tests/fuzz/corpus/TARGET/crash-*, leak-*, timeout-*), where make check
# replays them from then on.
#
# Usage: run.sh SRCDIR WORK SECONDS TARGET...
# Environment (set by make fuzz): FUZZ_CC, FUZZ_CPPFLAGS, FUZZ_LIBS, FUZZ_LIB_SOURCES.
set -u

srcdir=$1
work=$2
seconds=$3
shift 3

mkdir -p "$work/obj" || exit 1
cflags="-g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -std=c11"

# The library, instrumented, as an archive: each target links only the objects it needs, so a
# source that does not compile (work in progress elsewhere) only matters to a target using it.
echo "fuzz: building the library with $FUZZ_CC"
rm -f "$work/libcaback-fuzz.a" "$work"/obj/*.o
for f in $FUZZ_LIB_SOURCES; do
    case $f in *.c) ;; *) continue ;; esac
    o="$work/obj/$(basename "$f" .c).o"
    # shellcheck disable=SC2086
    if ! "$FUZZ_CC" $cflags -fsanitize=fuzzer-no-link,address,undefined $FUZZ_CPPFLAGS \
        -c -o "$o" "$srcdir/$f" 2>"$work/obj/$(basename "$f" .c).err"; then
        echo "fuzz: warning: $f does not compile (see $work/obj/$(basename "$f" .c).err); left out"
    fi
done
ar rcs "$work/libcaback-fuzz.a" "$work"/obj/*.o || exit 1

failed=""
for t in "$@"; do
    bin="$work/fuzz-$t"
    corpus="$srcdir/tests/fuzz/corpus/$t"
    log="$work/fuzz-$t.log"
    echo "fuzz-$t: building with $FUZZ_CC"
    # shellcheck disable=SC2086
    if ! "$FUZZ_CC" $cflags -fsanitize=fuzzer,address,undefined $FUZZ_CPPFLAGS \
        -I"$srcdir/tests/fuzz" -o "$bin" "$srcdir/tests/fuzz/fuzz-$t.c" \
        "$work/libcaback-fuzz.a" $FUZZ_LIBS; then
        echo "fuzz-$t: BUILD FAILED"
        failed="$failed $t"
        continue
    fi
    mkdir -p "$work/corpus-$t" "$corpus"
    dict=""
    [ -f "$srcdir/tests/fuzz/$t.dict" ] && dict="-dict=$srcdir/tests/fuzz/$t.dict"
    echo "fuzz-$t: running for $seconds s (log: $log)"
    # shellcheck disable=SC2086
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    LSAN_OPTIONS="suppressions=$srcdir/tests/lsan.supp:print_suppressions=0" \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$corpus/" $dict \
        "$work/corpus-$t" "$corpus" >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ "$status" -ne 0 ]; then
        echo "fuzz-$t: FOUND A PROBLEM after ${runs:-?} runs (exit $status); the input is in $corpus/:"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*fuzz check failed|artifact_prefix|Test unit written)' "$log" | head -n 20
        failed="$failed $t"
    else
        echo "fuzz-$t: ${runs:-?} runs in $seconds s, ${cov:-cov: ?} edges, no crash"
    fi
done

if [ -n "$failed" ]; then
    echo "make fuzz: problems in:$failed"
    exit 1
fi
exit 0
