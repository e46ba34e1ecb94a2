#!/bin/bash
# caback backup against other writers of its output folder (issue 15 §3): the bytes verified are
# the bytes recorded and linked (a swap after verification, driven through the
# CABACK_TEST_BACKUP_PAUSE hook, never a sleep race), a folder other users may write is refused,
# stale temporary files are removed only when their writer is gone, and ten concurrent backups
# to one -o all end cleanly with one complete file that verifies.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl sha256sum flock timeout

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'Race pass 1\n' >"$PW"
FAST=(--iterations 1000)
backup() { "$CABACK" backup -d "$DB" -f "$DB.pass" -w "$PW" "${FAST[@]}" "$@"; }
recorded_sha() { sed -n 's/^sha256=//p' "$CABACK_STATE_DIR/latest_backup"; }
recorded_path() { sed -n 's/^path=//p' "$CABACK_STATE_DIR/latest_backup"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
opens() { openssl pkcs12 -in "$1" -passin "file:$PW" -noout >/dev/null 2>&1; }
temps_in() { find "$1" -maxdepth 1 -name '.*.caback-tmp-*' | wc -l; }

# ---- a folder other users may write ----
mkdir "$TEST_TMP/open"
chmod 0777 "$TEST_TMP/open"
expect_status 1 "a world-writable output folder is refused" backup -o "$TEST_TMP/open/b.p12"
expect_grep "the refusal names the folder and its mode" "folder $TEST_TMP/open \(mode 0777" "$ERR"
expect_grep "the refusal names the override" 'allow-shared-folder' "$ERR"
expect_equal "nothing was written into the world-writable folder" "" "$(ls -A "$TEST_TMP/open")"
chmod 0770 "$TEST_TMP/open"
expect_status 1 "a group-writable output folder is refused" backup -o "$TEST_TMP/open/b.p12"
expect_grep "names mode 0770" 'mode 0770' "$ERR"
expect_status 0 "--allow-shared-folder writes there anyway" \
    backup -o "$TEST_TMP/open/b.p12" --allow-shared-folder
mkdir "$TEST_TMP/sticky"
chmod 1777 "$TEST_TMP/sticky"
expect_status 0 "a sticky world-writable folder (like /tmp) is accepted" backup -o "$TEST_TMP/sticky/b.p12"
other=cbk-race-$$
if make_test_user "$other"; then
    mkdir "$TEST_TMP/foreign"
    chown "$other" "$TEST_TMP/foreign"
    chmod 0755 "$TEST_TMP/foreign"
    expect_status 1 "a folder owned by another user is refused" backup -o "$TEST_TMP/foreign/b.p12"
    expect_grep "says it belongs to another user" 'belongs to another user' "$ERR"
    expect_equal "nothing was written into the foreign folder" "" "$(ls -A "$TEST_TMP/foreign")"
else
    skip "a folder owned by another user is refused" "cannot create a user here"
    skip "says it belongs to another user" "cannot create a user here"
    skip "nothing was written into the foreign folder" "cannot create a user here"
fi

# ---- the swap after verification ----
# At the pause the backup has verified its temporary file (read back through its descriptor) and
# computed its digest. The test then does what a writer of the folder could: put a forged file in
# place of the temporary file's name (named temporary files, CABACK_TEST_NO_TMPFILE=1) or at the
# output's name (the usual unnamed O_TMPFILE). The forged file must never be linked or recorded.
mkdir -p "$TEST_TMP/swap"
printf 'forged archive\n' >"$TEST_TMP/forged.src"
SWAP_OUT=$TEST_TMP/swap.out
# swap_run LABEL OUT WHAT [ENV=VALUE...] -- [backup args]: WHAT is "temp" or "target".
swap_run() {
    local label=$1 out=$2 what=$3 line temp; shift 3
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local pause=$TEST_TMP/pause-$label
    mkdir "$pause"
    mkfifo "$pause/paused" "$pause/resume"
    cp "$TEST_TMP/forged.src" "$TEST_TMP/forged"
    env ${envs[@]+"${envs[@]}"} CABACK_TEST_BACKUP_PAUSE="$pause" \
        "$CABACK" backup -d "$DB" -f "$DB.pass" -w "$PW" "${FAST[@]}" -o "$out" "$@" >"$SWAP_OUT" 2>&1 &
    local pid=$!
    line=$(timeout 300 cat "$pause/paused")
    temp=${line#paused }
    case $what in
    temp)
        if [ -f "$temp" ]; then
            mv -f "$TEST_TMP/forged" "$temp"
            ok "$label: paused after verification; temporary file $(basename "$temp") replaced"
        else
            not_ok "$label: the backup did not pause at a named temporary file ($line)"
        fi ;;
    target)
        expect_equal "$label: paused after verification; the temporary file has no name" "(unnamed)" "$temp"
        mv -f "$TEST_TMP/forged" "$out" ;;
    esac
    echo resume >"$pause/resume"
    SWAP_STATUS=0
    wait "$pid" || SWAP_STATUS=$?
    [ "$SWAP_STATUS" -eq 0 ] || diag "exit $SWAP_STATUS:" "$(tail -2 "$SWAP_OUT")"
}
forged_sha=$(sha_of "$TEST_TMP/forged.src")
not_forged() { if grep -q 'forged archive' "$2" 2>/dev/null; then not_ok "$1"; else ok "$1"; fi; }

backup -o "$TEST_TMP/swap/before.p12" >/dev/null 2>&1
before_sha=$(recorded_sha)

swap_run unnamed-force "$TEST_TMP/swap/a.p12" target -- --force
expect_equal "unnamed, --force: exit 0" 0 "$SWAP_STATUS"
not_forged "unnamed, --force: the forged file put at the output is replaced by the verified one" "$TEST_TMP/swap/a.p12"
expect_equal "unnamed, --force: the recorded SHA-256 is of the file in place" "$(sha_of "$TEST_TMP/swap/a.p12")" "$(recorded_sha)"
expect_grep "unnamed, --force: the summary prints that SHA-256" "SHA-256: $(recorded_sha)" "$SWAP_OUT"
check "unnamed, --force: the file in place opens with the password (openssl)" opens "$TEST_TMP/swap/a.p12"
prev_sha=$(recorded_sha)

swap_run unnamed-new "$TEST_TMP/swap/b.p12" target --
expect_equal "unnamed: a file planted at the output name stops the backup (exit 4)" 4 "$SWAP_STATUS"
expect_equal "unnamed: latest_backup is unchanged" "$prev_sha" "$(recorded_sha)"
check "unnamed: the planted file is not recorded" test "$(recorded_sha)" != "$forged_sha"

swap_run named-new "$TEST_TMP/swap/c.p12" temp CABACK_TEST_NO_TMPFILE=1 --
expect_equal "named: a replaced temporary file stops the backup (exit 1)" 1 "$SWAP_STATUS"
expect_grep "named: the message says the temporary file was replaced" 'removed or replaced by another process' "$SWAP_OUT"
check "named: nothing was put in place" test ! -e "$TEST_TMP/swap/c.p12"
expect_equal "named: latest_backup is unchanged" "$prev_sha" "$(recorded_sha)"

printf 'old\n' >"$TEST_TMP/swap/d.p12"
swap_run named-force "$TEST_TMP/swap/d.p12" temp CABACK_TEST_NO_TMPFILE=1 -- --force
expect_equal "named, --force: a replaced temporary file stops the backup (exit 1)" 1 "$SWAP_STATUS"
expect_equal "named, --force: the old file is untouched" "old" "$(cat "$TEST_TMP/swap/d.p12")"
expect_equal "named, --force: latest_backup is unchanged" "$prev_sha" "$(recorded_sha)"
check "the first backup was recorded before the swaps" test -n "$before_sha"

mkdir "$TEST_TMP/named"
expect_status 0 "named temporary files (no O_TMPFILE): a backup without interference" \
    env CABACK_TEST_NO_TMPFILE=1 "$CABACK" backup -d "$DB" -f "$DB.pass" -w "$PW" "${FAST[@]}" -o "$TEST_TMP/named/e.p12"
expect_equal "named: the recorded SHA-256 is of the file in place" "$(sha_of "$TEST_TMP/named/e.p12")" "$(recorded_sha)"
expect_equal "named: no temporary file is left" 0 "$(temps_in "$TEST_TMP/named")"

# ---- stale temporary files ----
mkdir "$TEST_TMP/stale"
stale=$TEST_TMP/stale/.b.p12.caback-tmp-AbCdEf
held=$TEST_TMP/stale/.b.p12.caback-tmp-HeLdXx
fresh=$TEST_TMP/stale/.b.p12.caback-tmp-FrEsHh
echo gone >"$stale"; touch -d '2 hours ago' "$stale"
echo live >"$held"; touch -d '2 hours ago' "$held"
echo new >"$fresh"
mkfifo "$TEST_TMP/hold"
# A live writer: flock(1) holds the lock until the FIFO gives it a line.
flock "$held" cat "$TEST_TMP/hold" >/dev/null &
holder=$!
exec 7>"$TEST_TMP/hold"
gone_within 10 sh -c "flock -n '$held' true" || true
expect_status 0 "a backup next to leftover temporary files" backup -o "$TEST_TMP/stale/b.p12"
check "an unlocked temporary file untouched for hours is removed" test ! -e "$stale"
check "a temporary file another run holds locked is kept" test -e "$held"
check "a temporary file written a moment ago is kept" test -e "$fresh"
exec 7>&-
wait "$holder" 2>/dev/null || true

# ---- ten concurrent backups to one -o ----
mkdir "$TEST_TMP/ten"
pids=()
for i in 0 1 2 3 4 5 6 7 8 9; do
    backup -o "$TEST_TMP/ten/b.p12" --force >"$TEST_TMP/ten-$i.out" 2>&1 &
    pids+=($!)
done
failed=0
for i in 0 1 2 3 4 5 6 7 8 9; do
    wait "${pids[$i]}" || { failed=$((failed + 1)); diag "run $i:" "$(tail -3 "$TEST_TMP/ten-$i.out")"; }
done
expect_equal "ten concurrent backups with --force: every run exits 0" 0 "$failed"
expect_equal "no temporary file is left" 0 "$(temps_in "$TEST_TMP/ten")"
check "the final file opens with the password (openssl)" opens "$TEST_TMP/ten/b.p12"
expect_equal "latest_backup records the SHA-256 of the final file" "$(sha_of "$TEST_TMP/ten/b.p12")" "$(recorded_sha)"
expect_status 0 "caback verify reads the final file" "$CABACK" verify "$TEST_TMP/ten/b.p12" -w "$PW"

mkdir "$TEST_TMP/ten2"
pids=()
for i in 0 1 2 3 4 5 6 7 8 9; do
    backup -o "$TEST_TMP/ten2/b.p12" >"$TEST_TMP/ten2-$i.out" 2>&1 &
    pids+=($!)
done
zero=0 exists=0 other=0
for i in 0 1 2 3 4 5 6 7 8 9; do
    status=0
    wait "${pids[$i]}" || status=$?
    if [ "$status" -eq 0 ]; then zero=$((zero + 1))
    elif [ "$status" -eq 4 ] && grep -q 'already exists' "$TEST_TMP/ten2-$i.out"; then exists=$((exists + 1))
    else other=$((other + 1)); diag "run $i: exit $status" "$(tail -3 "$TEST_TMP/ten2-$i.out")"; fi
done
expect_equal "ten concurrent backups without --force: one writes the file" 1 "$zero"
expect_equal "the nine others stop with exit 4, 'already exists'" 9 "$exists"
expect_equal "no temporary file is left" 0 "$(temps_in "$TEST_TMP/ten2")"
check "that file opens with the password (openssl)" opens "$TEST_TMP/ten2/b.p12"

done_testing
