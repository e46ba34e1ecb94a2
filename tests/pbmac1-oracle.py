#!/usr/bin/env python3
"""Independent PBMAC1 oracle for caback's tests (RFC 9579: PBMAC1 as the MAC of PKCS#12).

Written from RFC 7292 (PFX, MacData), RFC 8018 (PBMAC1-params, PBKDF2-params) and RFC 9579 with
nothing but the Python standard library, so that it shares no code and no library with caback's
reader and writer (NSS): PBKDF2 is hashlib.pbkdf2_hmac, the MAC is hmac, and the little DER it
needs is read and written here.

    pbmac1-oracle.py verify [-w FILE | --password-env VAR] P12
        Checks the PBMAC1 MAC of P12 and prints one "name: value" line per fact (mac, prf,
        hmac, iterations, salt, key-length, macdata-salt, macdata-iterations, mac-value, result).
        Exit 0: the MAC matches; 1: it does not; 2: usage or unreadable file; 3: the file is
        not one this oracle can check (no MAC, classic MAC, PBKDF2 keyLength missing, ...).

    pbmac1-oracle.py rewrite [-w FILE | --password-env VAR] -o OUT [--prf sha256|sha512]
            [--hmac sha256|sha512] [--iterations N] [--salt HEX] [--key-length N]
            [--macdata-salt HEX] [--macdata-iterations N]
            [--claim-iterations N] [--claim-salt HEX] [--omit-key-length] P12
        Writes OUT: P12's version and authSafe byte for byte, and a new PBMAC1 MacData computed
        here. The --claim-* options write other PBKDF2 parameters into the file than the MAC was
        computed with, and --omit-key-length leaves keyLength out (RFC 9579 appendix A.4, A.5
        and A.6: files a reader must refuse). Any MacData P12 had is dropped, so a file written
        with "openssl pkcs12 -export -nomac" works as well as any other.

The password is the first line of FILE (without its "\\n" or "\\r\\n"), or the value of the
environment variable VAR, used as its UTF-8 bytes (RFC 9579 section 5).
"""

import argparse
import hashlib
import hmac
import os
import sys

# ---- object identifiers ----
OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_PBMAC1 = "1.2.840.113549.1.5.14"
# RFC 8018 appendix B.1.1 and B.1.2: the HMACs usable as PBKDF2 PRF and as PBMAC1 scheme.
HMAC_OIDS = {
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
HMAC_OID_OF = {name: oid for oid, name in HMAC_OIDS.items()}
# Classic (RFC 7292) MAC digests, only to name them in a refusal.
DIGEST_NAMES = {
    "1.3.14.3.2.26": "SHA-1",
    "2.16.840.1.101.3.4.2.1": "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
    "2.16.840.1.101.3.4.2.4": "SHA-224",
}

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_CONTEXT_0 = 0xA0


class Unsupported(Exception):
    """The file is well formed but not one this oracle checks (exit 3)."""


class Malformed(Exception):
    """The file cannot be parsed (exit 2)."""


def hmac_label(name):
    return "HMAC-" + name.upper()


# ---- DER (and the BER a PKCS#12 authSafe may use) ----
class Node:
    """One TLV: its first identifier octet, the whole encoding, and its content (the value
    octets of a primitive, the children of a constructed one)."""

    def __init__(self, tag, raw, value, children):
        self.tag = tag
        self.raw = raw
        self.value = value
        self.children = children

    @property
    def constructed(self):
        return bool(self.tag & 0x20)


def parse(data, pos=0, depth=0):
    """Parses the TLV at data[pos:]; returns (Node, position after it)."""
    if depth > 64:
        raise Malformed("ASN.1 nested too deeply")
    start = pos
    if pos + 2 > len(data):
        raise Malformed("truncated ASN.1 at offset %d" % pos)
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        raise Malformed("high tag number at offset %d (not used by PKCS#12)" % start)
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        length = None  # BER indefinite length
        if not tag & 0x20:
            raise Malformed("indefinite length on a primitive at offset %d" % start)
    else:
        n = first & 0x7F
        if n > 4 or pos + n > len(data):
            raise Malformed("bad length at offset %d" % start)
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    children = []
    if length is None:
        while True:
            if data[pos:pos + 2] == b"\x00\x00":
                pos += 2
                break
            child, pos = parse(data, pos, depth + 1)
            children.append(child)
        return Node(tag, data[start:pos], None, children), pos
    end = pos + length
    if end > len(data):
        raise Malformed("truncated ASN.1 at offset %d (%d bytes announced)" % (start, length))
    if tag & 0x20:
        p = pos
        while p < end:
            child, p = parse(data, p, depth + 1)
            children.append(child)
        if p != end:
            raise Malformed("children overrun their parent at offset %d" % start)
        return Node(tag, data[start:end], None, children), end
    return Node(tag, data[start:end], data[pos:end], []), end


def parse_all(data):
    node, end = parse(data)
    if end != len(data):
        raise Malformed("%d bytes after the PFX" % (len(data) - end))
    return node


def expect(node, tag, what):
    if node.tag != tag:
        raise Malformed("%s: tag 0x%02x where 0x%02x was expected" % (what, node.tag, tag))
    return node


def octets(node, what):
    """The value of an OCTET STRING, primitive or (BER) constructed."""
    if node.tag == TAG_OCTET_STRING:
        return node.value
    if node.tag == TAG_OCTET_STRING | 0x20:
        return b"".join(octets(c, what) for c in node.children)
    raise Malformed("%s: not an OCTET STRING (tag 0x%02x)" % (what, node.tag))


def integer(node, what):
    expect(node, TAG_INTEGER, what)
    if not node.value:
        raise Malformed("%s: empty INTEGER" % what)
    value = int.from_bytes(node.value, "big", signed=True)
    if value < 0:
        raise Malformed("%s: negative INTEGER" % what)
    return value


def oid(node, what):
    expect(node, TAG_OID, what)
    v = node.value
    if not v or v[-1] & 0x80:
        raise Malformed("%s: malformed OBJECT IDENTIFIER" % what)
    arcs, n = [], 0
    for b in v:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first] + arcs[1:])


def algorithm(node, what):
    """AlgorithmIdentifier -> (OID string, parameters Node or None)."""
    expect(node, TAG_SEQUENCE, what)
    if not 1 <= len(node.children) <= 2:
        raise Malformed("%s: malformed AlgorithmIdentifier" % what)
    params = node.children[1] if len(node.children) == 2 else None
    return oid(node.children[0], what), params


def enc_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + enc_length(len(content)) + content


def seq(*items):
    return tlv(TAG_SEQUENCE, b"".join(items))


def enc_int(n):
    return tlv(TAG_INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def enc_octets(b):
    return tlv(TAG_OCTET_STRING, b)


def enc_oid(text):
    arcs = [int(a) for a in text.split(".")]
    out = bytearray()
    for a in [arcs[0] * 40 + arcs[1]] + arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(TAG_OID, bytes(out))


def enc_algorithm(oid_text, params=None):
    return seq(enc_oid(oid_text), params if params is not None else tlv(TAG_NULL, b""))


# ---- PKCS#12 ----
def split_pfx(data):
    """PFX -> (version Node, authSafe Node, the octets the MAC covers, MacData Node or None)."""
    pfx = expect(parse_all(data), TAG_SEQUENCE, "PFX")
    if len(pfx.children) not in (2, 3):
        raise Malformed("PFX: %d fields where 2 or 3 were expected" % len(pfx.children))
    version, auth_safe = pfx.children[0], pfx.children[1]
    if integer(version, "PFX version") != 3:
        raise Malformed("PFX version is not 3")
    expect(auth_safe, TAG_SEQUENCE, "authSafe")
    if len(auth_safe.children) != 2:
        raise Malformed("authSafe: not a ContentInfo with content")
    ctype = oid(auth_safe.children[0], "authSafe contentType")
    if ctype == OID_SIGNED_DATA:
        raise Unsupported("the authSafe is signed (public-key integrity mode): it has no MAC")
    if ctype != OID_DATA:
        raise Malformed("authSafe contentType %s is not id-data" % ctype)
    wrapper = auth_safe.children[1]
    if wrapper.tag != TAG_CONTEXT_0 or len(wrapper.children) != 1:
        raise Malformed("authSafe content is not [0] EXPLICIT")
    content = octets(wrapper.children[0], "authSafe content")
    mac_data = pfx.children[2] if len(pfx.children) == 3 else None
    return version, auth_safe, content, mac_data


def read_mac_data(node):
    """MacData with a PBMAC1 algorithm -> dict of its fields."""
    expect(node, TAG_SEQUENCE, "MacData")
    if len(node.children) not in (2, 3):
        raise Malformed("MacData: %d fields" % len(node.children))
    digest_info = expect(node.children[0], TAG_SEQUENCE, "MacData mac")
    if len(digest_info.children) != 2:
        raise Malformed("MacData mac: not a DigestInfo")
    alg, params = algorithm(digest_info.children[0], "MAC algorithm")
    if alg != OID_PBMAC1:
        raise Unsupported("the MAC is the classic RFC 7292 MAC with %s, not PBMAC1"
                          % DIGEST_NAMES.get(alg, alg))
    m = {
        "digest": octets(digest_info.children[1], "MAC value"),
        "macdata_salt": octets(node.children[1], "macSalt"),
        "macdata_iterations": integer(node.children[2], "MacData iterations")
        if len(node.children) == 3 else 1,
    }
    if params is None or params.tag != TAG_SEQUENCE or len(params.children) != 2:
        raise Malformed("PBMAC1-params: not a SEQUENCE of two AlgorithmIdentifiers")
    kdf, kdf_params = algorithm(params.children[0], "PBMAC1 keyDerivationFunc")
    scheme, _ = algorithm(params.children[1], "PBMAC1 messageAuthScheme")
    if kdf != OID_PBKDF2:
        raise Unsupported("the PBMAC1 key derivation is %s, not PBKDF2" % kdf)
    if scheme not in HMAC_OIDS:
        raise Unsupported("the PBMAC1 scheme %s is not an HMAC" % scheme)
    m["hmac"] = HMAC_OIDS[scheme]
    if kdf_params is None or kdf_params.tag != TAG_SEQUENCE:
        raise Malformed("PBKDF2-params: not a SEQUENCE")
    fields = list(kdf_params.children)
    if len(fields) < 2:
        raise Malformed("PBKDF2-params: salt or iterationCount missing")
    if fields[0].tag != TAG_OCTET_STRING:
        raise Unsupported("the PBKDF2 salt is not a specified OCTET STRING")
    m["salt"] = fields[0].value
    m["iterations"] = integer(fields[1], "PBKDF2 iterationCount")
    rest = fields[2:]
    m["key_length"] = None
    if rest and rest[0].tag == TAG_INTEGER:
        m["key_length"] = integer(rest[0], "PBKDF2 keyLength")
        rest = rest[1:]
    m["prf"] = "sha1"  # DEFAULT algid-hmacWithSHA1
    if rest:
        prf, _ = algorithm(rest[0], "PBKDF2 prf")
        if prf not in HMAC_OIDS:
            raise Unsupported("the PBKDF2 PRF %s is not an HMAC" % prf)
        m["prf"] = HMAC_OIDS[prf]
        rest = rest[1:]
    if rest:
        raise Malformed("PBKDF2-params: extra fields")
    return m


def pbmac1(password, content, prf, hmac_name, salt, iterations, key_length):
    key = hashlib.pbkdf2_hmac(prf, password, salt, iterations, key_length)
    return hmac.new(key, content, hmac_name).digest()


def build_mac_data(digest, prf, hmac_name, salt, iterations, key_length, macdata_salt,
                   macdata_iterations):
    kdf_fields = [enc_octets(salt), enc_int(iterations)]
    if key_length is not None:
        kdf_fields.append(enc_int(key_length))
    kdf_fields.append(enc_algorithm(HMAC_OID_OF[prf]))
    params = seq(enc_algorithm(OID_PBKDF2, seq(*kdf_fields)), enc_algorithm(HMAC_OID_OF[hmac_name]))
    return seq(seq(enc_algorithm(OID_PBMAC1, params), enc_octets(digest)),
               enc_octets(macdata_salt), enc_int(macdata_iterations))


# ---- commands ----
def read_password(args):
    if args.password_env is not None:
        value = os.environb.get(args.password_env.encode())
        if value is None:
            raise SystemExit("pbmac1-oracle: environment variable %s is not set" % args.password_env)
        return value
    if args.password_file is None:
        raise SystemExit("pbmac1-oracle: give the password with -w FILE or --password-env VAR")
    with open(args.password_file, "rb") as f:
        line = f.read().split(b"\n", 1)[0]
    return line[:-1] if line.endswith(b"\r") else line


def cmd_verify(args):
    password = read_password(args)
    with open(args.file, "rb") as f:
        data = f.read()
    _, _, content, mac_data = split_pfx(data)
    if mac_data is None:
        raise Unsupported("the file has no MacData")
    m = read_mac_data(mac_data)
    print("mac: PBMAC1")
    print("prf: " + hmac_label(m["prf"]))
    print("hmac: " + hmac_label(m["hmac"]))
    print("iterations: %d" % m["iterations"])
    print("salt: " + m["salt"].hex())
    print("key-length: " + ("missing" if m["key_length"] is None else str(m["key_length"])))
    print("macdata-salt: " + m["macdata_salt"].hex())
    print("macdata-iterations: %d" % m["macdata_iterations"])
    print("mac-value: " + m["digest"].hex())
    if m["key_length"] is None:
        raise Unsupported("the PBKDF2 parameters have no keyLength, which RFC 9579 requires")
    if len(m["digest"]) != hashlib.new(m["hmac"]).digest_size:
        print("result: mismatch (the MAC value has %d bytes)" % len(m["digest"]))
        return 1
    want = pbmac1(password, content, m["prf"], m["hmac"], m["salt"], m["iterations"],
                  m["key_length"])
    if hmac.compare_digest(want, m["digest"]):
        print("result: verified")
        return 0
    print("result: mismatch")
    return 1


def cmd_rewrite(args):
    password = read_password(args)
    with open(args.file, "rb") as f:
        data = f.read()
    version, auth_safe, content, _ = split_pfx(data)
    salt = bytes.fromhex(args.salt) if args.salt is not None else os.urandom(16)
    key_length = args.key_length or hashlib.new(args.hmac).digest_size
    digest = pbmac1(password, content, args.prf, args.hmac, salt, args.iterations, key_length)
    mac_data = build_mac_data(
        digest, args.prf, args.hmac,
        bytes.fromhex(args.claim_salt) if args.claim_salt is not None else salt,
        args.claim_iterations if args.claim_iterations is not None else args.iterations,
        None if args.omit_key_length else key_length,
        bytes.fromhex(args.macdata_salt) if args.macdata_salt is not None else b"NOT USED",
        args.macdata_iterations)
    out = seq(version.raw, auth_safe.raw, mac_data)
    with open(args.output, "wb") as f:
        f.write(out)
    return 0


def positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def main():
    parser = argparse.ArgumentParser(prog="pbmac1-oracle.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("verify", "rewrite"):
        p = sub.add_parser(name)
        p.add_argument("-w", dest="password_file", metavar="FILE")
        p.add_argument("--password-env", metavar="VAR")
        p.add_argument("file", metavar="P12")
        if name == "rewrite":
            p.add_argument("-o", dest="output", required=True, metavar="OUT")
            p.add_argument("--prf", choices=("sha256", "sha512"), default="sha256")
            p.add_argument("--hmac", choices=("sha256", "sha512"), default="sha256")
            p.add_argument("--iterations", type=positive, default=2048)
            p.add_argument("--salt", metavar="HEX", help="PBKDF2 salt (default: 16 random bytes)")
            p.add_argument("--key-length", type=positive,
                           help="PBKDF2 keyLength (default: the HMAC's output size)")
            p.add_argument("--macdata-salt", metavar="HEX",
                           help='MacData macSalt, unused by PBMAC1 (default: "NOT USED")')
            p.add_argument("--macdata-iterations", type=positive, default=1,
                           help="MacData iterations, unused by PBMAC1 (default: 1)")
            p.add_argument("--claim-iterations", type=positive,
                           help="write this PBKDF2 iteration count, not the one the MAC used")
            p.add_argument("--claim-salt", metavar="HEX",
                           help="write this PBKDF2 salt, not the one the MAC used")
            p.add_argument("--omit-key-length", action="store_true",
                           help="leave the PBKDF2 keyLength out")
    args = parser.parse_args()
    try:
        return cmd_verify(args) if args.command == "verify" else cmd_rewrite(args)
    except Unsupported as e:
        print("pbmac1-oracle: %s: %s" % (args.file, e), file=sys.stderr)
        return 3
    except (Malformed, ValueError, OSError) as e:
        print("pbmac1-oracle: %s: %s" % (args.file, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
