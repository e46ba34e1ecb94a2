#!/bin/bash
# The command table: version, help, unknown verbs and options, exit codes of usage errors.
. "$CABACK_SRCDIR/tests/lib.sh"

expect_status 0 "--version" "$CABACK" --version
expect_grep "--version prints the version" '^caback [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"
nss_runtime=$("$PYTHON3" -c 'import ctypes; l = ctypes.CDLL("libnss3.so"); l.NSS_GetVersion.restype = ctypes.c_char_p; print(l.NSS_GetVersion().decode())' 2>/dev/null)
expect_grep "--version prints the NSS, NSPR and GLib versions it runs with" \
    "^NSS ${nss_runtime:-[0-9.]+}, NSPR [0-9]+\.[0-9]+(\.[0-9]+)?, GLib [0-9]+\.[0-9]+\.[0-9]+\$" "$OUT"

expect_status 2 "no verb is a usage error" "$CABACK"
expect_grep "usage lists the verbs" 'listkeys' "$ERR"

expect_status 0 "help lists the verbs" "$CABACK" help
for verb in listkeys keyid fix-clone-ids; do
    expect_grep "help names $verb" "^  $verb " "$OUT"
done
expect_grep "help documents the exit codes" '3 wrong password' "$OUT"
expect_no_grep "help does not list the internal check-stored-keys" 'check-stored-keys' "$OUT"

expect_status 2 "unknown verb" "$CABACK" frobnicate
expect_grep "unknown verb is named" '"frobnicate"' "$ERR"

expect_status 2 "help for an unknown verb" "$CABACK" help frobnicate

for verb in listkeys keyid fix-clone-ids; do
    expect_status 0 "caback help $verb" "$CABACK" help "$verb"
    expect_grep "help $verb shows its usage" "caback $verb|Usage:" "$OUT"
done

expect_status 2 "unknown option is a usage error" "$CABACK" listkeys --no-such-option
expect_grep "unknown option names the verb's help" 'caback help listkeys' "$ERR"

expect_status 0 "-K is accepted as listkeys" "$CABACK" help -K

# The manual page documents every verb of the table and the exit codes.
man_src="$CABACK_SRCDIR/doc/caback.1"
for verb in $("$CABACK" help | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
    expect_grep "caback.1 documents $verb" "^\\.B caback $(printf '%s' "$verb" | sed 's/-/\\\\-/g')\$" "$man_src"
done
expect_grep "caback.1 lists exit status 5" '^\.B 5$' "$man_src"
if command -v man >/dev/null 2>&1; then
    run env MANWIDTH=80 man --warnings -l "$man_src"
    check "caback.1 renders without warnings" test ! -s "$ERR"
    [ -s "$ERR" ] && diag "$(head -20 "$ERR")"
else
    skip "caback.1 renders without warnings" "man is not installed"
fi

done_testing
