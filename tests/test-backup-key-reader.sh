#!/bin/bash
# Backup reads the keys out of key4.db through two openings of the database (CabackDb.reader in
# include/caback/db.h): softoken reads one key at a time per opening, so a second, read-only
# opening lets two keys be read at once. gdb shows which reading lanes ran: lane 1 reads through
# the second opening, and runs only when it opened, logged in and found the selected keys there.
# Whatever the lanes, the file must hold every key, each checked by the backup (it signs for its
# certificate), and the database must be left as it was.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util gdb

T=$TEST_TMP
DB=$T/ca
make_dogtag_ca "$DB"
EMPTY=$T/nopw
make_dogtag_ca "$EMPTY" ""
PW=$T/p12.pass
printf 'Key reader p12 pass\n' >"$PW"
FAST=(--iterations 2000)
export CABACK_STATE_DIR=$T/state
sums() { sha256sum "$DB/cert9.db" "$DB/key4.db" "$EMPTY/cert9.db" "$EMPTY/key4.db"; }
BEFORE=$(sums)

# gdb_backup NAME ARGS...: caback backup ARGS -o $T/NAME.p12 under gdb, which prints "copy lane N"
# each time a reading lane starts; gdb's output and caback's in $T/NAME.gdb.
gdb_backup() {
    local name=$1; shift
    cat >"$T/lanes.gdb" <<'EOF'
set pagination off
set confirm off
break copy_lane
commands
silent
printf "copy lane %u\n", lane
continue
end
run
EOF
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" gdb -q -batch -nx -x "$T/lanes.gdb" \
        --args "$CABACK" backup -o "$T/$name.p12" -w "$PW" "${FAST[@]}" "$@" >"$T/$name.gdb" 2>&1 </dev/null
}
keys_in() { pk12util -l "$1" -w "$PW" 2>/dev/null | grep -c '^Key(shrouded):'; }

gdb_backup all -d "$DB" -f "$DB.pass"
expect_grep "backup of the 5-key CA under gdb exits 0" 'exited normally' "$T/all.gdb"
expect_grep "the keys are read through the database's own opening (lane 0)" '^copy lane 0$' "$T/all.gdb"
expect_grep "... and through the second opening at the same time (lane 1)" '^copy lane 1$' "$T/all.gdb"
expect_equal "the file holds the 5 keys" 5 "$(keys_in "$T/all.p12")"
expect_no_grep "the second opening is named nowhere in the output" 'caback key reader' "$T/all.gdb"

export KEY_READER_DB_PASS
KEY_READER_DB_PASS=$(head -n1 "$DB.pass")
gdb_backup env -d "$DB" --password-env KEY_READER_DB_PASS
expect_grep "with --password-env too: exits 0" 'exited normally' "$T/env.gdb"
expect_grep "... and reads through the second opening" '^copy lane 1$' "$T/env.gdb"
expect_equal "... the file holds the 5 keys" 5 "$(keys_in "$T/env.p12")"

gdb_backup nopw -d "$EMPTY"
expect_grep "a database without a password: exits 0" 'exited normally' "$T/nopw.gdb"
expect_grep "... and reads through the second opening (no login needed)" '^copy lane 1$' "$T/nopw.gdb"
expect_equal "... the file holds the 5 keys" 5 "$(keys_in "$T/nopw.p12")"

gdb_backup one -d "$DB" -f "$DB.pass" -n "$DOGTAG_CA_NICK"
expect_grep "one key (-n): exits 0" 'exited normally' "$T/one.gdb"
expect_no_grep "... and is read through the database's own opening alone" '^copy lane 1$' "$T/one.gdb"
expect_equal "... the file holds the key" 1 "$(keys_in "$T/one.p12")"

run "$CABACK" backup --json -d "$DB" -f "$DB.pass" -o "$T/json.p12" -w "$PW" "${FAST[@]}"
expect_equal "--json backup (exit 0)" 0 "$STATUS"
expect_grep "the JSON names the database's own token" '"NSS Certificate DB"' "$OUT"
expect_no_grep "... and never the second opening" 'caback key reader' "$OUT"

expect_equal "the databases are byte-identical after the backups" "$BEFORE" "$(sums)"
done_testing
