#!/bin/bash
# Passwords typed at the terminal (a real pseudo-terminal, tests/prompt-pty.py): not echoed,
# accepted, asked twice for a new PKCS#12 file; Ctrl-C at the prompt ends caback and gives the
# terminal its echo back; a password longer than the prompt takes is refused, not cut short.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
DB_PASSWORD=$(head -n1 "$DB.pass")
PTY=("$PYTHON3" "$CABACK_SRCDIR/tests/prompt-pty.py")

# result_checks DESCRIPTION EXPR...: each Python expression over the result "r" must hold.
result_checks() { json_checks "$1" "$TEST_TMP/r.json" "${@:2}"; }

# ---- the database password, typed ----
"${PTY[@]}" "$TEST_TMP/r.json" "text:$DB_PASSWORD" -- "$CABACK" listkeys -d "$DB"
result_checks "listkeys with the password typed" \
    "r['prompts'] == 1 and r['exit'] == 0" \
    "'caSigningCert cert-pki-ca' in r['output']" \
    "'$DB_PASSWORD' not in r['output']" \
    "r['echo_after'] is True"

# ---- a wrong one: exit 3, asked once, never retried ----
"${PTY[@]}" "$TEST_TMP/r.json" "text:not the password" "text:$DB_PASSWORD" -- "$CABACK" listkeys -d "$DB"
result_checks "a wrong typed password" \
    "r['prompts'] == 1 and r['exit'] == 3" \
    "'not the password' not in r['output']"

# ---- Ctrl-C at the prompt ----
"${PTY[@]}" "$TEST_TMP/r.json" ctrl-c -- "$CABACK" listkeys -d "$DB"
result_checks "Ctrl-C at the prompt" \
    "r['prompts'] == 1 and r['signal'] == 2" \
    "r['echo_after'] is True"

# ---- longer than the prompt takes ----
LONG=$(head -c 3000 /dev/zero | tr '\0' 'x')
"${PTY[@]}" "$TEST_TMP/r.json" "text:$LONG" -- "$CABACK" listkeys -d "$DB"
result_checks "a 3,000-character password" \
    "r['exit'] == 1 and 'longer than the 1023 characters' in r['output']" \
    "r['echo_after'] is True"

# ---- a new PKCS#12 password is asked twice ----
"${PTY[@]}" "$TEST_TMP/r.json" "text:$DB_PASSWORD" "text:Typed p12 pass 1" "text:Typed p12 pass 1" -- \
    "$CABACK" backup -d "$DB" -o "$TEST_TMP/typed.p12" --iterations 2000 -n "$DOGTAG_CA_NICK"
result_checks "backup with every password typed" \
    "r['prompts'] == 3 and r['exit'] == 0" \
    "'Typed p12 pass' not in r['output']"
printf 'Typed p12 pass 1\n' >"$TEST_TMP/typed.pass"
expect_status 0 "the typed PKCS#12 password opens the file" \
    "$CABACK" list "$TEST_TMP/typed.p12" -w "$TEST_TMP/typed.pass"

"${PTY[@]}" "$TEST_TMP/r.json" "text:$DB_PASSWORD" "text:Typed p12 pass 1" "text:Typed p12 pass 2" -- \
    "$CABACK" backup -d "$DB" -o "$TEST_TMP/differ.p12" --iterations 2000 -n "$DOGTAG_CA_NICK"
result_checks "two different typed PKCS#12 passwords" \
    "r['exit'] not in (0, None)" \
    "'Typed p12 pass' not in r['output']"
check "no file when the two typed passwords differ" test ! -e "$TEST_TMP/differ.p12"

done_testing
