#!/bin/bash
# make demo: create a throwaway Dogtag-like CA and run caback's main jobs on it, showing each
# command as an administrator would type it.
# Usage: demo.sh CABACK DEMO_DIR
set -eu
CABACK=$1
DEMO=$2
CABACK_SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CABACK_BUILDDIR=$(cd "$(dirname "$CABACK")" && pwd)
export CABACK CABACK_SRCDIR CABACK_BUILDDIR
# The fixtures of the test suite build the demo CA with the real certutil.
. "$CABACK_SRCDIR/tests/lib.sh"
set -e

DB=$DEMO/alias
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s|$CABACK|caback|; s|$DEMO/|demo-ca/|g"; "$@"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
say "Creating a demo CA in $DEMO (the 5 keys and certificates of a Dogtag CA instance)"
make_dogtag_ca "$DB"
certutil -L -d "sql:$DB"

say "1. List the CA's private keys, with their key IDs in the NSS and the Dogtag forms"
show "$CABACK" listkeys -d "$DB" -f "$DB.password.conf"

say "2. Convert one key ID between the certutil -K form and the CS.cfg form"
id=$(certutil_key_ids "$DB" | head -n1 | cut -d' ' -f1)
show "$CABACK" keyid "$id"

say "3. A clone's CS.cfg after the subsystem certificate was re-keyed"
make_cscfg "$DB" "$DEMO/CS.cfg"
rekey_cert "$DB" "subsystemCert cert-pki-ca"
# exit 6: the dry run found entries to change
show "$CABACK" fix-clone-ids "$DEMO/CS.cfg" -d "$DB" -f "$DB.password.conf" --dry-run || [ $? -eq 6 ]
show "$CABACK" fix-clone-ids "$DEMO/CS.cfg" -d "$DB" -f "$DB.password.conf"

say "4. Back up the whole CA into one verified PKCS#12 file"
printf '%s\n' 'demo backup password' >"$DEMO/p12.pass"
chmod 600 "$DEMO/p12.pass"
show "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$DEMO/ca-backup.p12" -w "$DEMO/p12.pass" --force

say "5. Show what the backup holds, without touching any database"
show "$CABACK" list "$DEMO/ca-backup.p12" -w "$DEMO/p12.pass"

say "6. Restore the backup into a second, new database: plan, import, check, key IDs for CS.cfg"
printf '%s\n' 'demo restored db password' >"$DEMO/restored.pass"
chmod 600 "$DEMO/restored.pass"
show "$CABACK" restore -i "$DEMO/ca-backup.p12" -w "$DEMO/p12.pass" -d "$DEMO/restored" --create \
    -f "$DEMO/restored.pass"
certutil -L -d "sql:$DEMO/restored"
say "   Restoring it again changes nothing (the plan says every object is already present)"
show "$CABACK" restore -i "$DEMO/ca-backup.p12" -w "$DEMO/p12.pass" -d "$DEMO/restored" \
    -f "$DEMO/restored.pass" --dry-run

say "Done. The demo CA, its CS.cfg, the backup and the restored copy are in $DEMO"
