#!/bin/bash
# Hostile files: over 1,000 mutated PKCS#12 files (every truncation of a small file, DER length
# edits, bit flips) through caback list, and those that decode plus every 10th of the rest through
# caback restore (never a crash, never a partial import: a failed restore leaves the database's
# files byte-identical); the families of issue 16 (input sizes, iteration counts up to 2^100,
# hostile friendlyNames, certificate counts up to 2,000, weak and unusual keys) through list and
# restore, with the same checks; 500 mutated CS.cfg files through fix-clone-ids --dry-run (never a crash,
# the file never touched). The driver is tests/fault-mutate.py; its seed makes any failure
# reproducible. Under the sanitizer build a report exits with 86, which counts as a crash.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

T=$TEST_TMP
PW=$T/p12.pass
printf 'Mutate pass 8\n' >"$PW"

# A small file (one EC key and its short self-signed certificate), so that every truncation
# can be tried.
SMALL=$T/small
make_nssdb "$SMALL"
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$SMALL" -f "$SMALL.pass" -z "$SMALL.noise" -n s \
    -s "CN=s" -t u,u,u -k ec -q nistp256 -Z SHA256 -v 12 -m 7 >/dev/null 2>&1
expect_status 0 "a small backup to mutate" \
    "$CABACK" backup -q -d "$SMALL" -f "$SMALL.pass" -n s -o "$T/small.p12" -w "$PW" --iterations 1000
SCRATCH=$T/scratch
make_nssdb "$SCRATCH"

"$PYTHON3" "$CABACK_SRCDIR/tests/fault-mutate.py" p12 "$CABACK" "$T/small.p12" "$PW" "$SCRATCH" "$T/p12.json"
check "the PKCS#12 mutation driver ran" test -s "$T/p12.json"
read -r files trunc lengths flips lists listed restores restored crashes partial < <("$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["files"], r["truncations"], r["length_edits"], r["bit_flips"], r["list_runs"], r["listed_ok"],
      r["restore_runs"], r["restored_ok"], r["crashes"], r["partial_imports"])' "$T/p12.json")
diag "PKCS#12 mutations: $files files of a $(stat -c %s "$T/small.p12")-byte backup ($trunc truncations, $lengths length edits, $flips bit flips)"
diag "  list: $lists runs ($listed still listed); restore: $restores runs ($restored restored); crashes: $crashes; partial imports: $partial"
check "at least 1,000 mutated PKCS#12 files" test "$files" -ge 1000
check "every mutated file went through list" test "$lists" -eq "$files"
check "at least 100 went through restore" test "$restores" -ge 100
expect_equal "PKCS#12 mutations: no crash" 0 "$crashes"
expect_equal "PKCS#12 mutations: no partial import" 0 "$partial"
[ "$crashes$partial" = 00 ] || diag "$(head -c 3000 "$T/p12.json")"

# ---- past the MAC ----
# A file without MAC is accepted (with a warning), so mutations of one reach the safes, the bags and
# the encrypted keys: a restore can then fail halfway (a key that does not decrypt after another
# was imported), which must undo what it did. Two keys with their certificates, so that there is
# a halfway.
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$SMALL" -f "$SMALL.pass" -z "$SMALL.noise" -n t \
    -s "CN=t" -t u,u,u -k ec -q nistp256 -Z SHA256 -v 12 -m 8 >/dev/null 2>&1
expect_status 0 "a two-key backup to strip of its MAC and mutate" \
    "$CABACK" backup -q -d "$SMALL" -f "$SMALL.pass" -o "$T/two.p12" -w "$PW" --iterations 1000
SCRATCH2=$T/scratch2
make_nssdb "$SCRATCH2"
"$PYTHON3" "$CABACK_SRCDIR/tests/fault-mutate.py" p12nomac "$CABACK" "$T/two.p12" "$PW" "$SCRATCH2" "$T/nomac.json" 300
check "the MAC-less mutation driver ran" test -s "$T/nomac.json"
read -r nfiles nlengths nflips nlists nlisted nrestores nrestored nundone ncrashes npartial < <("$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["files"], r["length_edits"], r["bit_flips"], r["list_runs"], r["listed_ok"], r["restore_runs"],
      r["restored_ok"], r["failed_after_changes_undone"], r["crashes"], r["partial_imports"])' "$T/nomac.json")
diag "MAC-less PKCS#12 mutations: $nfiles files ($nlengths length edits, $nflips bit flips) of a two-key file"
diag "  list: $nlists runs ($nlisted still listed); restore: $nrestores runs ($nrestored restored, $nundone failed after changing the database and undid it); crashes: $ncrashes; partial imports: $npartial"
check "every MAC-less mutated file went through list and restore" test "$nlists" -eq "$nfiles" -a "$nrestores" -eq "$nfiles"
expect_equal "MAC-less mutations: no crash" 0 "$ncrashes"
expect_equal "MAC-less mutations: no partial import" 0 "$npartial"
[ "$ncrashes$npartial" = 00 ] || diag "$(head -c 3000 "$T/nomac.json")"

# ---- families (issue 16): sizes, iteration counts, names, certificate counts, key sizes ----
SCRATCH3=$T/scratch3
make_nssdb "$SCRATCH3"
mkdir -p "$T/families"
"$PYTHON3" "$CABACK_SRCDIR/tests/fault-mutate.py" families "$CABACK" "$PW" "$SCRATCH3" "$T/families/result.json"
check "the family mutation driver ran" test -s "$T/families/result.json"
read -r ffiles fsizes fits fnames fcounts fkeys flists frestores frestored fundone fcrashes fpartial < <("$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = r["families"]
print(r["files"], f.get("sizes", 0), f.get("iterations", 0), f.get("names", 0), f.get("certificate counts", 0),
      f.get("key sizes", 0), r["list_runs"], r["restore_runs"], r["restored_ok"], r["failed_after_changes_undone"],
      r["crashes"], r["partial_imports"])' "$T/families/result.json")
diag "family mutations: $ffiles files ($fsizes sizes, $fits iteration counts, $fnames names, $fcounts certificate counts, $fkeys key sizes)"
diag "  list: $flists runs; restore: $frestores runs ($frestored restored, $fundone failed after changing the database and undid it); crashes: $fcrashes; partial imports: $fpartial"
check "every family has files" test "$fsizes" -gt 0 -a "$fits" -gt 0 -a "$fnames" -gt 0 -a "$fcounts" -gt 0 -a "$fkeys" -gt 0
check "every family file went through list and restore" test "$flists" -eq "$ffiles" -a "$frestores" -eq "$ffiles"
expect_equal "family mutations: no crash" 0 "$fcrashes"
expect_equal "family mutations: every refusal left the database unchanged" 0 "$fpartial"
[ "$fcrashes$fpartial" = 00 ] || diag "$(head -c 3000 "$T/families/result.json")"

# ---- CS.cfg ----
CA=$T/ca
make_dogtag_ca "$CA"
make_cscfg "$CA" "$T/CS.cfg.orig"
rekey_cert "$CA" "subsystemCert cert-pki-ca"
mkdir -p "$T/cscfg"
cp "$T/CS.cfg.orig" "$T/cscfg/CS.cfg"
expect_status 6 "fix-clone-ids --dry-run on the unmutated file (changes needed)" \
    "$CABACK" fix-clone-ids "$T/cscfg/CS.cfg" -d "$CA" -f "$CA.pass" --dry-run
"$PYTHON3" "$CABACK_SRCDIR/tests/fault-mutate.py" cscfg "$CABACK" "$T/CS.cfg.orig" "$CA" "$T/cscfg/result.json" 500
check "the CS.cfg mutation driver ran" test -s "$T/cscfg/result.json"
read -r cfiles cruns cok ccrashes cchanged < <("$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["files"], r["runs"], r["exit_0"], r["crashes"], r["changed"])' "$T/cscfg/result.json")
diag "CS.cfg mutations: $cfiles files, $cruns fix-clone-ids --dry-run runs ($cok exit 0); crashes: $ccrashes; files changed by a dry run: $cchanged"
expect_equal "500 mutated CS.cfg files" 500 "$cfiles"
expect_equal "CS.cfg mutations: no crash" 0 "$ccrashes"
expect_equal "CS.cfg mutations: --dry-run never writes" 0 "$cchanged"
[ "$ccrashes$cchanged" = 00 ] || diag "$(head -c 3000 "$T/cscfg/result.json")"
diag "mutations: $((lists + nlists + flists)) list, $((restores + nrestores + frestores)) restore, $cruns fix-clone-ids; crashes: $((crashes + ncrashes + fcrashes + ccrashes)); partial imports: $((partial + npartial + fpartial))"

done_testing
