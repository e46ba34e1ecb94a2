#!/bin/bash
# The database password file (-f) is read like every file holding a secret: opened without
# following a symbolic link, checked with fstat on the descriptor read (a regular file of at most
# 64 KiB, or a named pipe read up to 64 KiB; never a folder or a device). A refusal names the
# file, says why, and changes nothing: the database's files are compared byte for byte before and
# after. The accepted forms (a first line, Dogtag's password.conf) and the message for a missing
# file stay as they were.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil "$PYTHON3"

T=$TEST_TMP
SRC=$T/src
make_dogtag_ca "$SRC"
PW=$T/p12.pass
printf 'Password file test 1\n' >"$PW"
FILE=$T/ca.p12
expect_status 0 "a backup to restore" "$CABACK" backup -q -d "$SRC" -f "$SRC.pass" -o "$FILE" -w "$PW" --iterations 2000

# ---- the forms that work ----
expect_status 0 "listkeys with a plain password file" "$CABACK" listkeys -d "$SRC" -f "$SRC.pass"
expect_status 0 "listkeys with Dogtag's password.conf" "$CABACK" listkeys -d "$SRC" -f "$SRC.password.conf"
printf '%s\r\nsecond line\n' "$FIXTURE_DB_PASSWORD" >"$T/crlf.pass"
expect_status 0 "listkeys with a CRLF first line" "$CABACK" listkeys -d "$SRC" -f "$T/crlf.pass"
run "$CABACK" listkeys -d "$SRC" -f "$T/no-such-file"
expect_equal "a missing password file: exit 1" 1 "$STATUS"
expect_grep "... with the message it always had" "cannot read the password for the NSS database .* from password file $T/no-such-file: Failed to open file “$T/no-such-file”: No such file or directory" "$ERR"

# ---- refusals change nothing ----
DST=$T/dst
make_nssdb "$DST"
# A first run makes the lock file, so that what follows has nothing to add to the folder.
expect_status 0 "a dry run on the target (makes its lock file)" "$CABACK" restore -q --dry-run -i "$FILE" -w "$PW" -d "$DST" -f "$DST.pass"
check "... which is there" test -f "$DST/caback.lock"
files_of() { (cd "$1" && for f in *; do printf '%s %s ' "$f" "$(stat -c %a "$f")"; sha256sum <"$f"; done) ; }
files_of "$DST" >"$T/before.txt"
same_files() { # DESCRIPTION
    files_of "$DST" >"$T/after.txt"
    if cmp -s "$T/before.txt" "$T/after.txt"; then ok "$1"; else
        not_ok "$1"; diag "$(diff "$T/before.txt" "$T/after.txt" | head -20)"
    fi
}

ln -s "$DST.pass" "$T/link.pass"
run "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f "$T/link.pass"
expect_equal "restore with a symbolic link as -f: exit 1" 1 "$STATUS"
expect_grep "... naming the file and the link" "password file $T/link.pass: it is a symbolic link, and caback does not follow one to a secret: give the file itself" "$ERR"
same_files "... and the database is unchanged, file by file"

head -c 70000 /dev/zero | tr '\0' 'x' >"$T/big.pass"
printf '\n' >>"$T/big.pass"
run "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f "$T/big.pass"
expect_equal "restore with a 70,001-byte -f: exit 1" 1 "$STATUS"
expect_grep "... naming the file and its size" "password file $T/big.pass: it has 70001 bytes, more than the 65536 caback reads from a file holding a secret" "$ERR"
same_files "... and the database is unchanged, file by file"

# A password.conf whose first line is the right password, padded past the cap: the cap is on the
# file, whatever its first line.
{ printf '%s\n' "$FIXTURE_DB_PASSWORD"; head -c 70000 /dev/zero | tr '\0' '#'; printf '\n'; } >"$T/padded.pass"
run "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f "$T/padded.pass"
expect_equal "an oversized -f is refused even when its first line is right: exit 1" 1 "$STATUS"
same_files "... and the database is unchanged, file by file"

run timeout 60 "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f /dev/zero
expect_equal "a device as -f is refused at once, before a byte is read: exit 1" 1 "$STATUS"
expect_grep "... naming it" "password file /dev/zero: it is not a regular file" "$ERR"
same_files "... and the database is unchanged, file by file"

# A named pipe is read as it comes (a way to hand the password over without a file), up to the cap.
mkfifo "$T/fifo.pass"
{ head -c 70000 /dev/zero | tr '\0' 'x'; printf '\n'; } >"$T/big.stream"
timeout 60 sh -c 'cat "$1" >"$2"' sh "$T/big.stream" "$T/fifo.pass" &
run timeout 60 "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f "$T/fifo.pass"
wait
expect_equal "a named pipe that gives more than 64 KiB is refused: exit 1" 1 "$STATUS"
expect_grep "... naming it" "password file $T/fifo.pass: more than the 65536 bytes caback reads from a file holding a secret came out of it" "$ERR"
same_files "... and the database is unchanged, file by file"
timeout 60 sh -c 'cat "$1" >"$2"' sh "$DST.pass" "$T/fifo.pass" &
expect_status 0 "a named pipe that gives the password: listkeys works" timeout 60 "$CABACK" listkeys -d "$DST" -f "$T/fifo.pass"
wait
# The kernel's links to caback's own descriptors are the one kind of link followed, as before.
expect_status 0 "-f <(...) (a /dev/fd link to a pipe): listkeys works" \
    "$CABACK" listkeys -d "$DST" -f <(cat "$DST.pass")
STATUS=0
"$CABACK" listkeys -d "$DST" -f /dev/stdin <"$DST.pass" >"$OUT" 2>"$ERR" || STATUS=$?
expect_equal "-f /dev/stdin from a file: listkeys works" 0 "$STATUS"

run "$CABACK" restore -i "$FILE" -w "$PW" -d "$DST" -f "$T"
expect_equal "a folder as -f: exit 1" 1 "$STATUS"
expect_grep "... naming it" "password file $T: it is not a regular file" "$ERR"
same_files "... and the database is unchanged, file by file"

# A backup refused the same way writes nothing.
run "$CABACK" backup -q -d "$SRC" -f "$T/link.pass" -o "$T/out.p12" -w "$PW" --iterations 2000
expect_equal "backup with a symbolic link as -f: exit 1" 1 "$STATUS"
check "... and writes no file" test ! -e "$T/out.p12"

# The same database, its password file given as a real file: the restore works.
expect_status 0 "restore with the password file itself" "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$DST" -f "$DST.pass"

done_testing
