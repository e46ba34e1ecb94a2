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
_test_users=()
_tap_cleanup() {
    local u
    for u in ${_test_users[@]+"${_test_users[@]}"}; do userdel "$u" >/dev/null 2>&1; done
    if [ -z "${CABACK_KEEP_TMP:-}" ]; then rm -rf "$TEST_TMP"; else echo "# kept $TEST_TMP"; fi
}

# make_test_user NAME: a new system user NAME (no home folder, no login shell), removed when the
# test ends. Status 1, and nothing made, when users cannot be made here (not root, no useradd):
# the caller skips what needed it. Use a unique NAME, e.g. cbk-WHAT-$$.
make_test_user() {
    [ "$(id -u)" -eq 0 ] && command -v useradd >/dev/null 2>&1 || return 1
    useradd -M -N -r -s /usr/sbin/nologin "$1" >/dev/null 2>&1 || return 1
    _test_users+=("$1")
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

# gone_within SECONDS CMD...: run CMD every 0.1 s while it succeeds, for at most SECONDS; status 0
# when it stopped succeeding in time (what it looks for is gone), 1 when it still succeeds.
gone_within() {
    local tries=$(($1 * 10))
    shift
    while "$@" >/dev/null 2>&1; do
        [ "$tries" -gt 0 ] || return 1
        tries=$((tries - 1))
        sleep 0.1
    done
}

# gdb_batch ARGS...: gdb in batch mode as the tests run it: no init files, no pager and no
# questions, the program started directly (not through a shell, so that its exit status and
# signals are its own), and breakpoints allowed in libraries not loaded yet. Without the shell,
# gdb splits the program's arguments at spaces and keeps its shell quoting: give it none with a
# space or a quote (test-backup-key-reader.sh, whose nickname has spaces, runs gdb through the
# shell for that reason).
gdb_batch() {
    gdb -q -batch -nx -ex 'set pagination off' -ex 'set confirm off' \
        -ex 'set startup-with-shell off' -ex 'set breakpoint pending on' "$@"
}

# gdb_count_calls "FUNCTION..." COMMAND...: run COMMAND under gdb with a silent breakpoint on
# each FUNCTION (names separated by spaces) that only counts; prints on one line how COMMAND
# ended ("exited normally" or "exited with code N") and the calls counted, all functions
# together. For tests that prove a costly NSS lookup is gone; leak checks are off under gdb.
gdb_count_calls() {
    local fns=$1 script=$TEST_TMP/count-calls.gdb out=$TEST_TMP/count-calls.out n=0 fn
    shift
    echo 'handle SIGPIPE nostop noprint pass' >"$script"
    for fn in $fns; do
        n=$((n + 1))
        printf 'break %s\ncommands %d\nsilent\ncontinue\nend\n' "$fn" "$n" >>"$script"
    done
    printf 'run\ninfo breakpoints\n' >>"$script"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        gdb_batch -x "$script" --args "$@" </dev/null >"$out" 2>&1
    {
        grep -o 'Inferior 1 (process [0-9]*) exited[a-z0-9 ]*' "$out" | sed 's/.*) //'
        grep -o 'already hit [0-9]* time' "$out" | awk '{n += $3} END {print n + 0}'
    } | tr '\n' ' ' | sed 's/ $//'
}

# core_at_breakpoint CORE BREAKPOINT ARGS...: run caback ARGS under gdb until it reaches the
# function BREAKPOINT (e.g. exit), write the process's core to CORE (gdb's output beside it, in
# CORE.gdb) and kill it. Succeeds when the breakpoint was reached and a core written. Without the
# NSS debugging knobs of make check: NSS keeps freed arenas for reuse then, as in production.
# tests/core_memory.py reads the core.
core_at_breakpoint() {
    local core=$1 bp=$2; shift 2
    rm -f "$core"
    (
        unset NSS_DISABLE_UNLOAD NSS_DISABLE_ARENA_FREE_LIST
        gdb_batch -ex "break $bp" -ex run -ex "gcore $core" -ex kill --args "$CABACK" "$@" \
            >"$core.gdb" 2>&1 </dev/null
    )
    [ -s "$core" ] && grep -q 'Breakpoint 1, ' "$core.gdb"
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

# dogtag_id HEX: the Dogtag CS.cfg form of a key ID (Java's new BigInteger(bytes).toString(16)),
# computed with Python integers, independently of caback.
dogtag_id() {
    "$PYTHON3" -c 'import sys
v = int.from_bytes(bytes.fromhex(sys.argv[1]), "big", signed=True)
print(("-" + format(-v, "x")) if v < 0 else format(v, "x"))' "$1"
}

# RESTORE_RESULT: a Python expression over a restore run-log record r, the result it must have when
# the restore succeeded. The fixture's keys are random, and restore warns (the record is then a
# WARNING) about each key whose Dogtag CS.cfg form is shorter than 20 bytes, which Dogtag before
# 10.5.6 cannot read: an ID whose first byte only carries the sign of the next (00 then < 80, or ff
# then >= 80), about 1 key in 256.
SHORT_DOGTAG_ID="(lambda b: (b[0] == 0 and b[1] < 0x80) or (b[0] == 0xff and b[1] >= 0x80))"
RESTORE_RESULT="('WARNING' if any($SHORT_DOGTAG_ID(bytes.fromhex(k['nss_id'])) for k in r['keys']) else 'OK')"

# CS.cfg tags of the fixture CA and their nicknames (Dogtag's ca.cert.list order).
DOGTAG_TAGS=("signing|caSigningCert cert-pki-ca" "ocsp_signing|ocspSigningCert cert-pki-ca"
    "sslserver|Server-Cert cert-pki-ca" "subsystem|subsystemCert cert-pki-ca"
    "audit_signing|auditSigningCert cert-pki-ca")

# cscfg_key_lines DBDIR TAG NICKNAME: the cloning.TAG.* lines that Dogtag (before 10.9) writes for
# the certificate NICKNAME of DBDIR: its key ID (certutil -K, converted by dogtag_id), RSA modulus
# and exponent (openssl: lowercase hex without leading zeros), subject and nickname.
cscfg_key_lines() {
    local dir=$1 tag=$2 nick=$3 id pem modulus exponent dn
    id=$(certutil_key_ids "$dir" | sed -n "s/^\([0-9a-f]*\) NSS Certificate DB:$nick\$/\1/p")
    pem=$(certutil -L -d "sql:$dir" -n "$nick" -a)
    modulus=$(printf '%s\n' "$pem" | openssl x509 -noout -modulus | sed 's/^Modulus=//' |
        tr 'A-F' 'a-f' | sed 's/^0*//')
    exponent=$(printf '%s\n' "$pem" | openssl x509 -noout -text |
        sed -n 's/^ *Exponent: [0-9]* (0x\([0-9a-f]*\)).*/\1/p')
    dn=$(printf '%s\n' "$pem" | openssl x509 -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    printf 'cloning.%s.dn=%s\n' "$tag" "$dn"
    printf 'cloning.%s.keyalgorithm=SHA256withRSA\n' "$tag"
    printf 'cloning.%s.keytype=rsa\n' "$tag"
    printf 'cloning.%s.nickname=%s\n' "$tag" "$nick"
    printf 'cloning.%s.privkey.id=%s\n' "$tag" "$(dogtag_id "$id")"
    printf 'cloning.%s.pubkey.encoded=\n' "$tag"
    printf 'cloning.%s.pubkey.exponent=%s\n' "$tag" "$exponent"
    printf 'cloning.%s.pubkey.modulus=%s\n' "$tag" "$modulus"
}

# make_cscfg DBDIR OUT: a CA's CS.cfg as Dogtag 10.x (before 10.9) leaves it after installation,
# for the keys of DBDIR (made by make_dogtag_ca): cs.type, ca.cert.list and the nicknames, and
# the cloning.<tag>.* entries with correct key IDs, moduli and exponents for every tag but
# sslserver (Dogtag writes none for it), cloning.list and cloning.module.token; one key=value per
# line, sorted by key, as Dogtag writes the file.
make_cscfg() {
    local dir=$1 out=$2 entry tag nick list=""
    {
        printf 'cs.type=CA\ninstanceId=pki-tomcat\ncloning.module.token=internal\n'
        printf 'ca.signing.certnickname=%s\n' "$DOGTAG_CA_NICK"
        printf 'ca.signing.tokenname=internal\n'
        for entry in "${DOGTAG_TAGS[@]}"; do
            IFS='|' read -r tag nick <<<"$entry"
            list=${list:+$list,}$tag
            printf 'ca.cert.%s.nickname=%s\n' "$tag" "$nick"
            [ "$tag" = sslserver ] || cscfg_key_lines "$dir" "$tag" "$nick"
        done
        printf 'ca.cert.list=%s\ncloning.list=%s\n' "$list" "$list"
    } | LC_ALL=C sort -t= -k1,1 >"$out"
}

# make_p12_variants SRCDIR OUTDIR PASSWORD: PKCS#12 files of the subsystem certificate of SRCDIR
# (made by make_dogtag_ca), with its key and the CA certificate, as other tools write them, in
# OUTDIR: pk12util.p12 (pk12util -o; the CA certificate has its nickname), openssl.p12 (OpenSSL
# 3 default: PBES2/AES-256, HMAC-SHA256), openssl-legacy.p12 (-legacy: RC2-40 certificates, 3DES
# key, HMAC-SHA1), openssl-empty.p12 (empty password), openssl-nopass.p12 (no encryption, no
# MAC), openssl-keyonly.p12 (-nocerts) and openssl-certonly.p12 (-nokeys, the CA certificate),
# all but pk12util.p12 with PASSWORD except the last three noted; certtool.p12 (GnuTLS) when
# certtool is installed. The OpenSSL files give no friendlyName to the CA certificate. Also
# writes the PEM files sub.crt, sub.key and ca.crt there.
make_p12_variants() {
    local src=$1 out=$2 pw=$3 nick="subsystemCert cert-pki-ca"
    local sub="$out/sub.crt" key="$out/sub.key" ca="$out/ca.crt"
    mkdir -p "$out"
    pk12util -o "$out/pk12util.p12" -n "$nick" -d "sql:$src" -k "$src.pass" -W "$pw" >/dev/null
    openssl pkcs12 -in "$out/pk12util.p12" -passin "pass:$pw" -nokeys -clcerts -out "$sub" 2>/dev/null
    openssl pkcs12 -in "$out/pk12util.p12" -passin "pass:$pw" -nokeys -cacerts -out "$ca" 2>/dev/null
    openssl pkcs12 -in "$out/pk12util.p12" -passin "pass:$pw" -nocerts -nodes -out "$key" 2>/dev/null
    openssl pkcs12 -export -in "$sub" -inkey "$key" -certfile "$ca" -name "$nick" \
        -passout "pass:$pw" -out "$out/openssl.p12"
    openssl pkcs12 -export -legacy -in "$sub" -inkey "$key" -certfile "$ca" -name "$nick" \
        -passout "pass:$pw" -out "$out/openssl-legacy.p12"
    openssl pkcs12 -export -in "$sub" -inkey "$key" -certfile "$ca" -name "$nick" \
        -passout "pass:" -out "$out/openssl-empty.p12"
    openssl pkcs12 -export -in "$sub" -inkey "$key" -certfile "$ca" -name "$nick" \
        -keypbe NONE -certpbe NONE -nomac -passout "pass:" -out "$out/openssl-nopass.p12"
    openssl pkcs12 -export -nocerts -inkey "$key" -name "$nick" -passout "pass:$pw" \
        -out "$out/openssl-keyonly.p12" 2>/dev/null
    openssl pkcs12 -export -nokeys -in "$ca" -passout "pass:$pw" \
        -out "$out/openssl-certonly.p12" 2>/dev/null
    if command -v certtool >/dev/null 2>&1; then
        certtool --to-p12 --load-certificate "$sub" --load-privkey "$key" \
            --load-ca-certificate "$ca" --p12-name "$nick" --password "$pw" --outder \
            --outfile "$out/certtool.p12" >/dev/null 2>&1
    fi
}

# ---- custodians (M-of-N custody, doc/custody.md) ----
# make_custodian DIR NAME [rsa|ec] [CERTUTIL OPTIONS...]: a custodian's own NSS database DIR
# (password in DIR.pass, as make_nssdb writes it) holding a self-signed certificate NAME
# ("CN=NAME,O=Custodians.TEST") with its key: RSA 2048 with keyEncipherment, or EC P-256 with
# keyAgreement (the usage the share's CMS needs); further options go to certutil -S (e.g.
# "-w -30 -v 1" for an expired certificate, or another --keyUsage). Writes the certificate as
# DIR.pem (PEM) and DIR.der (DER). With FIXTURE_CUSTODIAN_KEY_PEM=1 it also writes the private
# key as DIR.key (PKCS#8 PEM, unencrypted) for openssl cms -decrypt.
make_custodian() {
    local dir=$1 name=$2 type=${3:-rsa}; shift 2; [ $# -gt 0 ] && shift
    local keyopts usage
    if [ "$type" = ec ]; then
        keyopts="-k ec -q nistp256"; usage=digitalSignature,keyAgreement
    else
        keyopts="-k rsa -g 2048"; usage=digitalSignature,keyEncipherment
    fi
    make_nssdb "$dir"
    _fixture_serial=$((_fixture_serial + 1))
    local has_usage=0 o
    for o in "$@"; do [ "$o" = --keyUsage ] && has_usage=1; done
    # shellcheck disable=SC2086,SC2068
    if [ "$has_usage" -eq 1 ]; then
        certutil -S -x -d "sql:$dir" -f "$dir.pass" -z "$dir.noise" -n "$name" \
            -s "CN=$name,O=Custodians.TEST" -t ",," $keyopts -Z SHA256 -v 24 \
            -m "$_fixture_serial" $@ >/dev/null 2>&1
    else
        certutil -S -x -d "sql:$dir" -f "$dir.pass" -z "$dir.noise" -n "$name" \
            -s "CN=$name,O=Custodians.TEST" -t ",," $keyopts -Z SHA256 -v 24 \
            -m "$_fixture_serial" --keyUsage "$usage" $@ >/dev/null 2>&1
    fi || return 1
    certutil -L -d "sql:$dir" -n "$name" -a >"$dir.pem" || return 1
    certutil -L -d "sql:$dir" -n "$name" -r >"$dir.der" || return 1
    if [ "${FIXTURE_CUSTODIAN_KEY_PEM:-0}" = 1 ]; then
        pk12util -o "$dir.p12" -n "$name" -d "sql:$dir" -k "$dir.pass" -W "custodian" \
            >/dev/null 2>&1 &&
            openssl pkcs12 -in "$dir.p12" -passin pass:custodian -nocerts -nodes 2>/dev/null |
            openssl pkey -out "$dir.key" && chmod 600 "$dir.key"
    fi
}

# The SoftHSM2 PKCS#11 library, in $SOFTHSM_LIB; returns 1 when it is not installed.
find_softhsm_lib() {
    SOFTHSM_LIB=
    local lib
    for lib in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so \
        /usr/lib64/pkcs11/libsofthsm2.so /usr/lib/*/pkcs11/libsofthsm2.so; do
        [ -f "$lib" ] && SOFTHSM_LIB=$lib && return 0
    done
    return 1
}

# make_softhsm_token LABEL PIN: a SoftHSM2 token LABEL with user PIN PIN (SO PIN 5678), in this
# test's own token folder ($TEST_TMP/tokens, configured through SOFTHSM2_CONF, set on first use).
make_softhsm_token() {
    if [ -z "${SOFTHSM2_CONF:-}" ] || [ "${SOFTHSM2_CONF#"$TEST_TMP"}" = "$SOFTHSM2_CONF" ]; then
        export SOFTHSM2_CONF=$TEST_TMP/softhsm2.conf
        mkdir -p "$TEST_TMP/tokens"
        printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
            "$TEST_TMP/tokens" >"$SOFTHSM2_CONF"
    fi
    softhsm2-util --init-token --free --label "$1" --pin "$2" --so-pin 5678 >/dev/null
}

# ---- the run log's state folder ----
# Every test keeps caback's state folder (run log, latest_backup) in its own temporary folder, so
# that no test writes to the real one (~/.local/state/caback, or /var/lib/caback as root).
export CABACK_STATE_DIR=$TEST_TMP/state

# json_checks DESCRIPTION FILE EXPR...: one TAP line per Python expression, each evaluated over
# the JSON document of FILE as "r"; a failing one shows the start of the document.
json_checks() {
    local desc=$1 file=$2 line; shift 2
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "$desc: ${line#PASS }" ;;
        *) not_ok "$desc: ${line#FAIL }"; diag "$(head -c 1500 "$file")" ;;
        esac
    done < <("$PYTHON3" - "$file" "$@" <<'PY' 2>&1
import json, sys
r = json.loads(open(sys.argv[1]).read())
for expr in sys.argv[2:]:
    print(('PASS ' if eval(expr) else 'FAIL ') + expr)
PY
    )
}
