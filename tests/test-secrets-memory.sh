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
import struct, sys
data = open(sys.argv[1], "rb").read()
# Only the process's memory (the PT_LOAD segments): gdb writes the command line it started the
# program with into the core's notes, whatever the program did to its own argv since.
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
core = bytearray()
for i in range(phnum):
    p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
    if p_type == 1:
        core += data[p_offset:p_offset + p_filesz] + b"\0"
for label, pw in (("database password", sys.argv[2]), ("PKCS#12 password", sys.argv[3]),
                  ("Windows-form password", sys.argv[4])):
    # A copy freed without wiping loses its first 16 bytes to malloc's free-list pointers:
    # its last 12 characters (random hex) are searched for too.
    for form in ("utf-8", "utf-16-be", "utf-16-le"):
        n = core.count(pw.encode(form))
        tail = core.count(pw[-12:].encode(form))
        print(("PASS " if n + tail == 0 else "FAIL ") +
              "no %s in %s (%d found, %d of its last 12 characters)" % (label, form, n, tail))
EOF
    )
}

# core_at_exit NAME ARGS...: run caback ARGS under gdb, stop it in exit(), write $T/NAME.core.
core_at_exit() {
    local name=$1; shift
    rm -f "$T/$name.core"
    # Without the NSS debugging knobs of make check: NSS keeps freed arenas for reuse then, as
    # in production.
    env -u NSS_DISABLE_UNLOAD -u NSS_DISABLE_ARENA_FREE_LIST \
    gdb -q -batch -nx -ex 'set pagination off' -ex 'set confirm off' \
        -ex 'set startup-with-shell off' -ex 'set breakpoint pending on' -ex 'break exit' -ex run \
        -ex "gcore $T/$name.core" -ex kill --args "$CABACK" "$@" >"$T/$name.gdb" 2>&1 </dev/null
    if [ -s "$T/$name.core" ] && grep -q 'Breakpoint 1, ' "$T/$name.gdb"; then
        ok "$name: caback stopped in exit() and a core was written"
        return 0
    fi
    not_ok "$name: no core file at exit()"
    diag "$(tail -n 15 "$T/$name.gdb")"
    return 1
}

# The search must find a password where one certainly is: a backup stopped while it checks
# the file it wrote, with the PKCS#12 password in hand.
gdb -q -batch -nx -ex 'set pagination off' -ex 'set startup-with-shell off' \
    -ex 'set breakpoint pending on' -ex 'break caback_backup_verify_bytes' -ex run \
    -ex "gcore $T/held.core" -ex kill \
    --args "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$T/held.p12" -w "$T/p12.pass" \
    --iterations 2000 >"$T/held.gdb" 2>&1 </dev/null
if [ -s "$T/held.core" ]; then
    (in_core "while the backup runs (expected to FIND the PKCS#12 password)" "$T/held.core") >"$T/held.tap"
    HELD=$(grep -c 'not ok .*PKCS#12 password in utf-8' "$T/held.tap")
    expect_equal "the search finds the PKCS#12 password in a core taken while it is in use" 1 "$HELD"
else
    not_ok "a core while caback runs"; diag "$(tail -n 15 "$T/held.gdb")"
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
