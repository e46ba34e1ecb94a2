# Shared code for caback's end-to-end tests: TAP output, running commands, and fixtures made with
# the real NSS tools. Source it from a test script: . "$CABACK_SRCDIR/tests/lib.sh"
# shellcheck shell=bash

set -u

CABACK_SRCDIR=${CABACK_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CABACK_BUILDDIR=${CABACK_BUILDDIR:-$CABACK_SRCDIR}
CABACK=${CABACK:-$CABACK_BUILDDIR/caback}
PYTHON3=${PYTHON3:-python3}
export NSS_DISABLE_UNLOAD=1 NSS_DISABLE_ARENA_FREE_LIST=1

# Every test gets its own folder, removed at exit unless CABACK_KEEP_TMP is set.
mkdir -p "$CABACK_BUILDDIR/tests"
TEST_TMP=$(mktemp -d "$CABACK_BUILDDIR/tests/$(basename "$0" .sh).XXXXXX.tmp")
_tap_n=0
_tap_failed=0
_tap_cleanup() {
    if [ -z "${CABACK_KEEP_TMP:-}" ]; then rm -rf "$TEST_TMP"; else echo "# kept $TEST_TMP"; fi
}
trap _tap_cleanup EXIT

# ---- TAP ----
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP ${2:-}"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
    local desc=$1; shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# run COMMAND...: runs it with stdout in $OUT, stderr in $ERR, status in $STATUS. Never fails.
OUT=$TEST_TMP/stdout
ERR=$TEST_TMP/stderr
STATUS=0
run() {
    STATUS=0
    "$@" >"$OUT" 2>"$ERR" </dev/null || STATUS=$?
}

# expect_status CODE DESCRIPTION COMMAND...: runs COMMAND and checks its exit status.
expect_status() {
    local want=$1 desc=$2; shift 2
    run "$@"
    if [ "$STATUS" -eq "$want" ]; then
        ok "$desc (exit $want)"
    else
        not_ok "$desc: exit $STATUS, expected $want"
        diag "command: $*" "stdout:" "$(head -c 2000 "$OUT")" "stderr:" "$(head -c 2000 "$ERR")"
    fi
}

# expect_grep DESCRIPTION PATTERN FILE: ok when the extended regex PATTERN is in FILE.
expect_grep() {
    if grep -Eq -- "$2" "$3"; then ok "$1"; else
        not_ok "$1: /$2/ not in $(basename "$3")"; diag "$(head -c 2000 "$3")"
    fi
}
# expect_no_grep DESCRIPTION PATTERN FILE: ok when PATTERN is not in FILE.
expect_no_grep() {
    if grep -Eq -- "$2" "$3"; then not_ok "$1: /$2/ found in $(basename "$3")"; diag "$(grep -E -- "$2" "$3" | head -5)"; else ok "$1"; fi
}
# expect_equal DESCRIPTION EXPECTED ACTUAL
expect_equal() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "expected: $2" "actual:   $3"; fi
}

# need TOOL...: skip the rest of the script (as a TAP skip) when a peer tool is missing.
need() {
    local t
    for t in "$@"; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "1..0 # SKIP $t is not installed"
            exit 0
        fi
    done
}

# done_testing: print the plan; exit 1 when any test failed.
done_testing() {
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ]
}

# ---- fixtures ----
# The database password used by the fixtures, in the two file forms caback accepts.
FIXTURE_DB_PASSWORD='Fixture.DB-pass 1'

# make_nssdb DIR [PASSWORD]: a new empty NSS database (sql) in DIR. Writes DIR.pass (the password
# as a plain first line) and DIR.password.conf (Dogtag form, internal=...). An empty PASSWORD
# makes a database without a password.
make_nssdb() {
    local dir=$1 pw=${2-$FIXTURE_DB_PASSWORD}
    mkdir -p "$dir"
    printf '%s\n' "$pw" >"$dir.pass"
    printf 'internal=%s\ninternaldb=not-this-one\n' "$pw" >"$dir.password.conf"
    if [ -z "$pw" ]; then
        certutil -N -d "sql:$dir" --empty-password
    else
        certutil -N -d "sql:$dir" -f "$dir.pass"
    fi
    head -c 256 /dev/urandom >"$dir.noise"
}

# The certificates of a Dogtag CA instance (pki-tomcat), as "nickname|subject|trust|extra options".
DOGTAG_CERTS=(
    "ocspSigningCert cert-pki-ca|CN=OCSP Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain|u,u,u|--extKeyUsage ocspResponder"
    "subsystemCert cert-pki-ca|CN=Subsystem Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain|u,u,u|--extKeyUsage serverAuth,clientAuth"
    "Server-Cert cert-pki-ca|CN=pki.example.test,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain|u,u,u|--extKeyUsage serverAuth"
    "auditSigningCert cert-pki-ca|CN=CA Audit Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain|u,u,Pu|--keyUsage digitalSignature,nonRepudiation"
)
DOGTAG_CA_NICK="caSigningCert cert-pki-ca"
_fixture_serial=100

# make_ca_cert DIR: the self-signed CA certificate caSigningCert cert-pki-ca, trust CTu,Cu,Cu.
make_ca_cert() {
    local dir=$1
    _fixture_serial=$((_fixture_serial + 1))
    printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$dir" -f "$dir.pass" -z "$dir.noise" \
        -n "$DOGTAG_CA_NICK" -s "CN=CA Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" \
        -t "CTu,Cu,Cu" -k rsa -g 2048 -Z SHA256 -v 240 -m "$_fixture_serial" -2 \
        --keyUsage certSigning,crlSigning,digitalSignature,nonRepudiation >/dev/null 2>&1
}

# issue_cert DIR NICKNAME SUBJECT TRUST [CERTUTIL OPTIONS...]: a new key and a certificate for it
# signed by the fixture CA.
issue_cert() {
    local dir=$1 nick=$2 subject=$3 trust=$4; shift 4
    _fixture_serial=$((_fixture_serial + 1))
    # shellcheck disable=SC2068
    certutil -S -d "sql:$dir" -f "$dir.pass" -z "$dir.noise" -c "$DOGTAG_CA_NICK" \
        -n "$nick" -s "$subject" -t "$trust" -k rsa -g 2048 -Z SHA256 -v 24 \
        -m "$_fixture_serial" $@ >/dev/null 2>&1
}

# make_dogtag_ca DIR [PASSWORD]: a database that looks like a Dogtag CA instance's alias folder:
# the CA signing certificate and the OCSP, subsystem, server and audit certificates, 5 keys.
make_dogtag_ca() {
    local dir=$1 entry nick subject trust extra
    make_nssdb "$dir" "${2-$FIXTURE_DB_PASSWORD}"
    make_ca_cert "$dir"
    for entry in "${DOGTAG_CERTS[@]}"; do
        IFS='|' read -r nick subject trust extra <<<"$entry"
        # shellcheck disable=SC2086
        issue_cert "$dir" "$nick" "$subject" "$trust" $extra
    done
}

# rekey_cert DIR NICKNAME: replace NICKNAME's certificate with one for a new key (as a re-keyed
# subsystem has it). The old key stays in the database without a certificate.
rekey_cert() {
    local dir=$1 nick=$2 entry n subject trust extra
    for entry in "${DOGTAG_CERTS[@]}"; do
        IFS='|' read -r n subject trust extra <<<"$entry"
        if [ "$n" = "$nick" ]; then
            certutil -D -d "sql:$dir" -f "$dir.pass" -n "$nick"
            # shellcheck disable=SC2086
            issue_cert "$dir" "$nick" "$subject" "$trust" $extra
            return
        fi
    done
    echo "rekey_cert: unknown nickname $nick" >&2
    return 1
}

# certutil_key_ids DIR: the key IDs certutil -K prints, one "ID NICKNAME" per line, sorted.
certutil_key_ids() {
    certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null |
        sed -n 's/^<[ 0-9]*> *[a-z]* *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2/p' | sort
}
