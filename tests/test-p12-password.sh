#!/bin/bash
# One rule for the PKCS#12 password in every verb (issue 17 §1): the first line of -w FILE without
# its line ending ("\n" or "\r\n"), nothing else removed or parsed; the value of
# --p12-password-env; the line typed at the prompt (a real pseudo-terminal, tests/prompt-pty.py);
# the Windows forms' argument. For each source, a file made by backup with that source is listed,
# verified and restored with every other source, with passwords that hold '=', ':', spaces at both
# ends and non-ASCII letters, and from a CRLF file. A password.conf-looking line is the password
# itself in list and restore as in backup and verify.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
DB_PASSWORD=$(head -n1 "$DB.pass")
NEWPW=$TEST_TMP/new.pass
printf 'New DB pass 1\n' >"$NEWPW"
PTY=("$PYTHON3" "$CABACK_SRCDIR/tests/prompt-pty.py")
FAST=(--iterations 2000)
NICK=$DOGTAG_CA_NICK

# The passwords: '=' and ':' (a password.conf line), spaces at both ends with '=', non-ASCII
# letters with an inner space.
PASSWORDS=('internal=Secret:9' '  sp=a:ce  ' 'pässwörd Ünï çödé')
# Which source backup uses for each password, so that every source writes one file.
WRITERS=(file prompt env)

# args_for SOURCE INDEX: set ARGS (options) and ENVS (environment) giving password INDEX by SOURCE;
# "crlf" is the file source with a "\r\n" line ending and a second line that must be ignored.
args_for() {
    local pw=${PASSWORDS[$2]}
    ARGS=(); ENVS=()
    case $1 in
    file) printf '%s\nsecond line\n' "$pw" >"$TEST_TMP/pw$2.txt"; ARGS=(-w "$TEST_TMP/pw$2.txt") ;;
    crlf) printf '%s\r\nsecond line\r\n' "$pw" >"$TEST_TMP/pw$2.crlf"; ARGS=(-w "$TEST_TMP/pw$2.crlf") ;;
    env) ENVS=("P12_PW=$pw"); ARGS=(--p12-password-env P12_PW) ;;
    esac
}

# pty_run DESCRIPTION PROMPTS ANSWER... -- COMMAND...: run COMMAND on a pseudo-terminal answering
# its prompts; ok when it exits 0 after PROMPTS prompts, never showing the password.
pty_run() {
    local desc=$1 prompts=$2; shift 2
    "${PTY[@]}" "$TEST_TMP/r.json" "$@"
    json_checks "$desc" "$TEST_TMP/r.json" \
        "r['prompts'] == $prompts and r['exit'] == 0" \
        "r['echo_after'] is True"
}

# restored_ok DESCRIPTION DIR: the CA certificate and its key are in DIR.
restored_ok() {
    if certutil -K -d "sql:$2" -f "$NEWPW" 2>/dev/null | grep -qF "$NICK"; then ok "$1: key restored"
    else not_ok "$1: key not in $2"; fi
}

for i in "${!PASSWORDS[@]}"; do
    pw=${PASSWORDS[$i]}
    writer=${WRITERS[$i]}
    P12=$TEST_TMP/f$i.p12
    label="password $((i + 1)) written from $writer"

    # ---- backup ----
    if [ "$writer" = prompt ]; then
        pty_run "$label: backup" 2 "text:$pw" "text:$pw" -- \
            "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" "${FAST[@]}" -n "$NICK"
    else
        args_for "$writer" "$i"
        expect_status 0 "$label: backup" env "${ENVS[@]}" \
            "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" "${FAST[@]}" -n "$NICK" "${ARGS[@]}"
    fi

    # ---- list, verify and restore with every source ----
    for src in file crlf env prompt windows; do
        if [ "$src" = prompt ]; then
            pty_run "$label: list, password typed" 1 "text:$pw" -- "$CABACK" list "$P12"
            pty_run "$label: verify, password typed" 1 "text:$pw" -- "$CABACK" verify "$P12"
            pty_run "$label: restore, password typed" 1 "text:$pw" -- \
                "$CABACK" restore -i "$P12" -d "$TEST_TMP/db-$i-$src" --create -f "$NEWPW"
            restored_ok "$label: restore, password typed" "$TEST_TMP/db-$i-$src"
        elif [ "$src" = windows ]; then
            expect_status 0 "$label: restore, Windows form" \
                "$CABACK" -restore "$pw" "$P12" -d "$TEST_TMP/db-$i-$src" --create -f "$NEWPW"
            restored_ok "$label: restore, Windows form" "$TEST_TMP/db-$i-$src"
        else
            args_for "$src" "$i"
            expect_status 0 "$label: list with $src" env "${ENVS[@]}" "$CABACK" list "$P12" "${ARGS[@]}"
            expect_grep "$label: list with $src shows the certificate" "$NICK" "$OUT"
            expect_status 0 "$label: verify with $src" env "${ENVS[@]}" "$CABACK" verify "$P12" "${ARGS[@]}"
            expect_status 0 "$label: restore with $src" env "${ENVS[@]}" \
                "$CABACK" restore -i "$P12" "${ARGS[@]}" -d "$TEST_TMP/db-$i-$src" --create -f "$NEWPW"
            restored_ok "$label: restore with $src" "$TEST_TMP/db-$i-$src"
        fi
    done
done

# ---- the Windows backup form writes what -w reads ----
W=$TEST_TMP/windows.p12
expect_status 0 "Windows form backup with a password holding '=' and spaces" \
    "$CABACK" -backup "${PASSWORDS[1]}" "$W" -d "$DB" -f "$DB.pass"
args_for crlf 1
expect_status 0 "a CRLF -w file opens the Windows form's backup" "$CABACK" list "$W" "${ARGS[@]}"

# ---- nothing but the line ending is removed or parsed ----
# A file made with "Secret:9" does not open with the line "internal=Secret:9" (it is not read as
# password.conf), nor with the password's spaces trimmed.
printf 'Secret:9\n' >"$TEST_TMP/short.txt"
expect_status 3 "'internal=Secret:9' is not read as password.conf (list)" \
    "$CABACK" list "$TEST_TMP/f0.p12" -w "$TEST_TMP/short.txt"
expect_status 3 "'internal=Secret:9' is not read as password.conf (restore)" \
    "$CABACK" restore -i "$TEST_TMP/f0.p12" -w "$TEST_TMP/short.txt" -d "$TEST_TMP/db-short" --create -f "$NEWPW"
printf 'sp=a:ce\n' >"$TEST_TMP/trimmed.txt"
for verb in list verify; do
    expect_status 3 "$verb: the spaces at both ends belong to the password" \
        "$CABACK" "$verb" "$TEST_TMP/f1.p12" -w "$TEST_TMP/trimmed.txt"
done
# A "\r" that no "\n" follows is part of the password.
printf '%s\r' "${PASSWORDS[0]}" >"$TEST_TMP/lone-cr.txt"
expect_status 3 "a lone '\\r' at the end is part of the password" \
    "$CABACK" list "$TEST_TMP/f0.p12" -w "$TEST_TMP/lone-cr.txt"
# ---- -w FILE is opened like every file holding a secret ----
# No symbolic link is followed (another user could point it at a password of theirs), except the
# kernel's links to caback's own descriptors; a folder or a device is refused; nothing is written.
printf '%s\n' "${PASSWORDS[0]}" >"$TEST_TMP/real.txt"
ln -s "$TEST_TMP/real.txt" "$TEST_TMP/link.txt"
run "$CABACK" list "$TEST_TMP/f0.p12" -w "$TEST_TMP/link.txt"
expect_equal "a symbolic link as -w: exit 1" 1 "$STATUS"
expect_grep "... naming the file and why" "password file $TEST_TMP/link.txt: it is a symbolic link, and caback does not follow one to a secret" "$ERR"
run "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$TEST_TMP/by-link.p12" -w "$TEST_TMP/link.txt" --iterations 2000
expect_equal "backup with a symbolic link as -w: exit 1" 1 "$STATUS"
check "... and writes no file" test ! -e "$TEST_TMP/by-link.p12"
check "... nor any temporary one" test -z "$(find "$TEST_TMP" -maxdepth 1 -name 'by-link*')"
run "$CABACK" list "$TEST_TMP/f0.p12" -w "$TEST_TMP"
expect_equal "a folder as -w: exit 1" 1 "$STATUS"
expect_grep "... it is not a regular file" "password file $TEST_TMP: it is not a regular file" "$ERR"
run "$CABACK" list "$TEST_TMP/f0.p12" -w /dev/null
expect_equal "a device as -w: exit 1" 1 "$STATUS"
expect_status 0 "a pipe as -w (-w <(...)) opens the file" \
    "$CABACK" list "$TEST_TMP/f0.p12" -w <(cat "$TEST_TMP/real.txt")
# (run gives commands /dev/null as stdin, itself a device, so this one runs by hand.)
STATUS=0
"$CABACK" list "$TEST_TMP/f0.p12" -w /dev/stdin <"$TEST_TMP/real.txt" >"$OUT" 2>"$ERR" || STATUS=$?
expect_equal "-w /dev/stdin from a file opens the file" 0 "$STATUS"
expect_status 0 "the file itself opens it" "$CABACK" list "$TEST_TMP/f0.p12" -w "$TEST_TMP/real.txt"

# Never shown: not in any output of this script's runs.
expect_no_grep "the password is not in the last output" "Secret:9" "$OUT"
expect_no_grep "nor in its errors" "Secret:9" "$ERR"

done_testing
