#!/bin/bash
# No copy of a password in caback's memory once it is done with it: caback runs under gdb, which
# stops it at exit() (main has returned: every secret caback held is freed) and writes a core
# file with gcore; the core is searched for the database password and the PKCS#12 password, in
# UTF-8 and in the UTF-16 forms (big- and little-endian) that PKCS#12's key derivation uses. Verbs:
# backup (both passwords), restore (both), verify (the PKCS#12 password), listkeys (the database
# password). Passwords come from files; a password given in the environment stays in the
# environment by nature, and the Windows form's argument is wiped in argv (checked here too).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil gdb "$PYTHON3"
# A build with AddressSanitizer maps terabytes of shadow memory, which a core would have to hold;
# the search is made on the normal build.
if grep -qa __asan_init "$CABACK"; then
    skip "core search" "caback is built with AddressSanitizer (its cores hold the shadow memory); the normal build runs this test"
    done_testing
    exit 0
fi

T=$TEST_TMP
# Long, distinctive passwords, so that a match cannot be chance.
DB_PW="DbPw-core-probe-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
P12_PW="P12Pw-core-probe-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WIN_PW="WinPw-core-probe-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DB=$T/ca
make_dogtag_ca "$DB" "$DB_PW"
printf '%s\n' "$P12_PW" >"$T/p12.pass"

# in_core DESCRIPTION CORE: one TAP line per password form: no copy in CORE.
in_core() {
    local desc=$1 core=$2 line
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "$desc: ${line#PASS }" ;;
        *) not_ok "$desc: ${line#FAIL }" ;;
        esac
    done < <("$PYTHON3" - "$core" "$DB_PW" "$P12_PW" "$WIN_PW" <<'EOF'
import os, sys
sys.path.insert(0, os.path.join(os.environ["CABACK_SRCDIR"], "tests"))
from core_memory import FORMS, process_memory, tail_of
core = process_memory(sys.argv[1])
for label, pw in (("database password", sys.argv[2]), ("PKCS#12 password", sys.argv[3]),
                  ("Windows-form password", sys.argv[4])):
    for form in FORMS:
        n = core.count(pw.encode(form))
        tail = core.count(tail_of(pw).encode(form))
        print(("PASS " if n + tail == 0 else "FAIL ") +
              "no %s in %s (%d found, %d of its last 12 characters)" % (label, form, n, tail))
EOF
    )
}

# core_at_exit NAME ARGS...: run caback ARGS under gdb, stop it in exit(), write $T/NAME.core.
core_at_exit() {
    local name=$1; shift
    if core_at_breakpoint "$T/$name.core" exit "$@"; then
        ok "$name: caback stopped in exit() and a core was written"
        return 0
    fi
    not_ok "$name: no core file at exit()"
    diag "$(tail -n 15 "$T/$name.core.gdb")"
    return 1
}

# The search must find a password where one certainly is: a backup stopped while it checks
# the file it wrote, with the PKCS#12 password in hand.
if core_at_breakpoint "$T/held.core" caback_backup_verify_bytes \
    backup -d "$DB" -f "$DB.pass" -o "$T/held.p12" -w "$T/p12.pass" --iterations 2000; then
    (in_core "while the backup runs (expected to FIND the PKCS#12 password)" "$T/held.core") >"$T/held.tap"
    HELD=$(grep -c 'not ok .*PKCS#12 password in utf-8' "$T/held.tap")
    expect_equal "the search finds the PKCS#12 password in a core taken while it is in use" 1 "$HELD"
else
    not_ok "a core while caback runs"; diag "$(tail -n 15 "$T/held.core.gdb")"
fi
rm -f "$T/held.core"

if core_at_exit backup backup -d "$DB" -f "$DB.pass" -o "$T/b.p12" -w "$T/p12.pass" --iterations 2000; then
    in_core "backup" "$T/backup.core"
fi
check "the backup under gdb was written" test -s "$T/b.p12"
make_nssdb "$T/new" "$DB_PW"
if core_at_exit restore restore -i "$T/b.p12" -w "$T/p12.pass" -d "$T/new" -f "$T/new.pass"; then
    in_core "restore" "$T/restore.core"
fi
if core_at_exit verify verify "$T/b.p12" -w "$T/p12.pass"; then
    in_core "verify" "$T/verify.core"
fi
if core_at_exit list list "$T/b.p12" -w "$T/p12.pass"; then
    in_core "list" "$T/list.core"
fi
if core_at_exit listkeys listkeys -d "$DB" -f "$DB.pass"; then
    in_core "listkeys" "$T/listkeys.core"
fi
# The Windows form: the password comes in argv, is copied out and wiped there.
rm -f "$T/w.p12"
if core_at_exit windows -backup "$WIN_PW" "$T/w.p12" -d "$DB" -f "$DB.pass" --iterations 2000; then
    in_core "-backup PASSWORD FILE" "$T/windows.core"
fi
rm -f "$T"/*.core

done_testing
