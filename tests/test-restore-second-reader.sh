#!/bin/bash
# The second reader of a restore's last step (caback check-stored-keys): its answers on a real
# database (pairs, nopair, a key that is not there, a malformed request, a database it cannot
# open); a restore that gets its answers from it; a restore whose second reader is killed before
# it answers (every key is then checked by the restore itself, and the result is the same); a
# restore with the database password typed at a prompt (no second reader at all); a reader that
# dies with a restore killed with kill -9; and no
# caback process left after a restore.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util gdb "$PYTHON3"

T=$TEST_TMP
SRC=$T/src
make_dogtag_ca "$SRC"
PW=$T/p12.pass
printf 'Second reader pass 1\n' >"$PW"
FILE=$T/ca.p12
expect_status 0 "a backup to restore" "$CABACK" backup -q -d "$SRC" -f "$SRC.pass" -o "$FILE" -w "$PW" --iterations 2000

# ---- the protocol, on the source database ----
key_id() { certutil -K -d "sql:$SRC" -f "$SRC.pass" 2>/dev/null | grep -F "$1" | awk '{print $4}'; }
cert_b64() { certutil -L -d "sql:$SRC" -n "$1" -r | base64 -w0; }
CA_ID=$(key_id "caSigningCert cert-pki-ca")
{
    printf '7 %s %s\n' "$CA_ID" "$(cert_b64 "caSigningCert cert-pki-ca")"
    printf '8 %s %s\n' "$CA_ID" "$(cert_b64 "subsystemCert cert-pki-ca")"
    printf '9 00000000000000000000000000000000000000ff %s\n' "$(cert_b64 "caSigningCert cert-pki-ca")"
    printf '10 00ff %s\n' "$(cert_b64 "caSigningCert cert-pki-ca")"
    printf 'not a request\n'
} >"$T/requests"
# (run reads from /dev/null: the requests go in directly.)
STATUS=0
"$CABACK" check-stored-keys -d "$SRC" -f "$SRC.pass" <"$T/requests" >"$OUT" 2>"$ERR" || STATUS=$?
expect_equal "check-stored-keys exits 0 at the end of its input" 0 "$STATUS"
expect_equal "it says ready first" ready "$(sed -n 1p "$OUT")"
expect_equal "the CA key pairs with the CA certificate" "7 pairs" "$(sed -n 2p "$OUT")"
expect_equal "the CA key does not pair with the subsystem certificate" "8 nopair" "$(sed -n 3p "$OUT")"
expect_grep "a key that is not there: failed, naming the ID and the token" '^9 failed NSS finds no private key with ID 00000000000000000000000000000000000000ff in token "NSS Certificate DB"$' "$OUT"
expect_grep "a key ID that is not 40 hex digits: malformed" '^10 failed malformed request$' "$OUT"
expect_grep "a malformed request: failed" '^not failed malformed request$' "$OUT"
run "$CABACK" check-stored-keys -d "$SRC" -f "$T/no-such-file" </dev/null
expect_equal "a password file it cannot read: exit 1" 1 "$STATUS"
expect_grep "... and one fatal line naming the file, for the restore" '^fatal cannot read the password for the NSS database .* from password file .*no-such-file' "$OUT"
run "$CABACK" check-stored-keys -d "$SRC" </dev/null
expect_grep "without a password source it never prompts: fatal" '^fatal ' "$OUT"

# ---- a restore whose checks the second reader makes ----
# gdb stops the restore when it reads the first answer and shows what the answer was.
# LeakSanitizer cannot work under ptrace, so a sanitizer build runs these without its leak check
# (the reader's own runs above keep it).
gdb_restore() {
    local db=$1; shift
    make_nssdb "$db" >/dev/null
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" gdb_batch \
        -ex 'handle SIGPIPE nostop noprint pass' "$@" \
        --args "$CABACK" restore -v -i "$FILE" -w "$PW" -d "$db" -f "$db.pass" >"$T/gdb.out" 2>&1 </dev/null
}
gdb_restore "$T/a" -ex 'break caback_stored_key_checker_wait' -ex run -ex finish -ex delete -ex continue
expect_grep "the second reader answered the first check: the key pairs" 'Value returned is .* = CABACK_STORED_KEY_PAIRS' "$T/gdb.out"
expect_grep "the restore completed" 'Restored 5 certificate\(s\) and 5 key\(s\)' "$T/gdb.out"
expect_grep "... with its 5 pairs checked" '5 certificate and key pair\(s\) checked' "$T/gdb.out"
expect_equal "the database holds the 5 keys" 5 "$(certutil -K -d "sql:$T/a" -f "$T/a.pass" 2>/dev/null | grep -c 'cert-pki-ca$')"

# ---- the second reader killed before it answers anything ----
# Stopped before the first request is written; the reader is killed (kill -9) from gdb; the
# restore's writes then fail with EPIPE (not SIGPIPE), and each check is made in the restore.
gdb_restore "$T/b" -ex 'break caback_stored_key_checker_submit' -ex run \
    -ex "shell pkill -9 -f '^$CABACK check-stored-keys -d $T/b '" -ex 'shell sleep 0.2' -ex delete \
    -ex 'break caback_stored_key_checker_wait' -ex continue -ex finish -ex delete -ex continue
expect_grep "with the reader killed, the first check is left to the restore (UNANSWERED)" 'Value returned is .* = CABACK_STORED_KEY_UNANSWERED' "$T/gdb.out"
expect_grep "... which completes" 'Restored 5 certificate\(s\) and 5 key\(s\)' "$T/gdb.out"
expect_grep "... with its 5 pairs checked by itself" '5 certificate and key pair\(s\) checked' "$T/gdb.out"
expect_grep "... and says so with -v" 'The second reader of the stored keys \(caback check-stored-keys\) stopped early, so this process checked the rest itself: it stopped' "$T/gdb.out"
expect_equal "the same certificates and trust as the first restore" \
    "$(certutil -L -d "sql:$T/a" | sort)" "$(certutil -L -d "sql:$T/b" | sort)"

# ---- the second reader dies with the restore ----
# The restore is stopped before its first request; a sleep in the background opens the reader's
# input pipe for writing too (through /proc), so that the reader cannot see the end of its input
# and leave on its own; the restore is then killed with kill -9 from gdb. Only the kernel's
# parent-death signal can end the reader then.
cat >"$T/hold.sh" <<EOS
#!/bin/sh
pgrep -f '^$CABACK check-stored-keys -d $T/e ' >'$T/e.reader' || exit 0
exec sleep 30 9>/proc/\$(head -1 '$T/e.reader')/fd/0
EOS
chmod +x "$T/hold.sh"
gdb_restore "$T/e" -ex 'break caback_stored_key_checker_submit' -ex run \
    -ex "shell '$T/hold.sh' </dev/null >/dev/null 2>&1 & echo \$! >'$T/e.hold'; sleep 0.3" -ex kill
expect_equal "a reader was running when the restore was killed" 1 "$(wc -l <"$T/e.reader")"
reader=$(head -1 "$T/e.reader")
expect_status 0 "... and its input was held open from outside" test -d "/proc/$(cat "$T/e.hold")"
if gone_within 5 kill -0 "$reader"; then
    reader_left=0
else
    diag "the reader $(ps -o pid,stat,args -p "$reader" | tail -1) outlived the restore"
    kill -9 "$reader"
    reader_left=1
fi
kill "$(cat "$T/e.hold")" 2>/dev/null
expect_equal "... it was gone within 5 s (killed by the kernel with the restore)" 0 "$reader_left"

# ---- no second reader when the password was typed ----
make_nssdb "$T/c" >/dev/null
"$PYTHON3" "$CABACK_SRCDIR/tests/prompt-pty.py" "$T/c.json" "text:$(head -1 "$T/c.pass")" -- \
    "$CABACK" restore -v -i "$FILE" -w "$PW" -d "$T/c" >/dev/null 2>&1
"$PYTHON3" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["exit"]); open(sys.argv[2], "w").write(r["output"])' \
    "$T/c.json" "$T/c.out" >"$T/c.exit"
expect_equal "a restore with the database password typed at the prompt" 0 "$(cat "$T/c.exit")"
expect_grep "... checks the stored keys itself, and says why" 'checked by this process only \(the database password was typed at a prompt' "$T/c.out"
expect_grep "... all 5 of them" '5 certificate and key pair\(s\) checked' "$T/c.out"

# ---- nothing left running ----
make_nssdb "$T/d" >/dev/null
expect_status 0 "one more restore" "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$T/d" -f "$T/d.pass"
expect_equal "no check-stored-keys process is left" 0 "$(pgrep -c -f "^$CABACK check-stored-keys -d $T/" || true)"

done_testing
