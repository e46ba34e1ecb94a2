#!/usr/bin/env python3
"""A small maker of certificates and detached CMS signatures for caback's tests.

The tools that sign (caback sign, cmsutil, openssl cms) always state the current time and refuse
weak keys or old digests; the tests need signatures they would not make: any signing time, none,
several SignerInfos, weak signer keys, SHA-1 in the signer's chain, bytes after the DER. The keys,
certificates and signature values come from pyca/cryptography; only the CMS structure
(RFC 5652 SignedData) is put together here, in DER.

  cms-maker.py cert DIR NAME [--issuer NAME] [--key rsa:BITS[:EXP] | ec:CURVE | dsa:BITS |
               file:PEM] [--hash sha256|sha1] [--days-before N] [--days-after N] [--ca]
      writes DIR/NAME.key (PKCS#8 PEM) and DIR/NAME.pem; the issuer's files must be in DIR
      (no --issuer: self-signed). Not-before is now minus --days-before (default 1), not-after
      now plus --days-after (default 365; negative: already expired).
  cms-maker.py sign FILE OUT --signer DIR/NAME [--signer ...] [--chain DIR/NAME ...]
               [--time YYYY-MM-DDTHH:MM:SSZ | --time none | --time-offset SECONDS]
               [--trailing N]
      writes a detached SignedData over FILE: one SignerInfo per --signer (SHA-256, signed
      attributes contentType, signingTime, messageDigest), the signers' certificates and the
      --chain ones included.
"""
import argparse
import datetime
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


# ---- DER ----
def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def seq(*items):
    return tlv(0x30, b"".join(items))


def set_of(*items):
    # DER: the elements of a SET OF in the order of their encodings.
    return tlv(0x31, b"".join(sorted(items)))


def integer(n):
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


NULL = b"\x05\x00"
OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_RSA = "1.2.840.113549.1.1.1"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_DSA_SHA256 = "2.16.840.1.101.3.4.3.2"


def signing_time(when):
    if 1950 <= when.year < 2050:
        return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


# ---- keys and certificates ----
def make_key(spec):
    kind, _, rest = spec.partition(":")
    if kind == "rsa":
        bits, _, exp = rest.partition(":")
        return rsa.generate_private_key(int(exp or 65537), int(bits or 2048))
    if kind == "ec":
        curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1(),
                  "k256": ec.SECP256K1()}
        return ec.generate_private_key(curves[rest or "p256"])
    if kind == "dsa":
        return dsa.generate_private_key(int(rest or 2048))
    if kind == "file":
        with open(rest, "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)
    raise SystemExit("cms-maker: unknown key " + spec)


def load(base):
    with open(base + ".key", "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(base + ".pem", "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return key, cert


SHA256_WITH_RSA = seq(oid("1.2.840.113549.1.1.11"), NULL)
SHA1_WITH_RSA = seq(oid("1.2.840.113549.1.1.5"), NULL)


def resign_sha1(cert, issuer_key):
    """@cert signed again by @issuer_key (RSA) with SHA-1: newer pyca/cryptography no longer
    signs certificates with SHA-1, so the to-be-signed part is signed here."""
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(SHA256_WITH_RSA) == 1, "the issuer must have an RSA key"
    tbs = tbs.replace(SHA256_WITH_RSA, SHA1_WITH_RSA)
    value = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    der = seq(tbs, SHA1_WITH_RSA, tlv(0x03, b"\x00" + value))
    return x509.load_der_x509_certificate(der)


def cmd_cert(a):
    key = make_key(a.key)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, a.name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CMS MAKER.TEST")])
    if a.issuer:
        issuer_key, issuer_cert = load(os.path.join(a.dir, a.issuer))
        issuer = issuer_cert.subject
    else:
        issuer_key, issuer = key, name
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=a.days_before))
         .not_valid_after(now + datetime.timedelta(days=a.days_after)))
    if a.ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                          False), critical=True)
    else:
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False,
                                          False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                            critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    if a.hash == "sha1":
        cert = resign_sha1(cert, issuer_key)
    base = os.path.join(a.dir, a.name)
    with open(base + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(base + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


# ---- the signature ----
def signer_info(key, cert, digest, when):
    attrs = [seq(oid(OID_CONTENT_TYPE), set_of(oid(OID_DATA))),
             seq(oid(OID_MESSAGE_DIGEST), set_of(tlv(0x04, digest)))]
    if when is not None:
        attrs.append(seq(oid(OID_SIGNING_TIME), set_of(signing_time(when))))
    signed = set_of(*attrs)  # what is signed: the attributes as a SET OF
    if isinstance(key, rsa.RSAPrivateKey):
        value = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        alg = seq(oid(OID_RSA), NULL)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        alg = seq(oid(OID_ECDSA_SHA256))
    else:
        value = key.sign(signed, hashes.SHA256())
        alg = seq(oid(OID_DSA_SHA256))
    issuer_and_serial = seq(cert.issuer.public_bytes(), integer(cert.serial_number))
    return seq(integer(1), issuer_and_serial, seq(oid(OID_SHA256), NULL),
               b"\xa0" + signed[1:],  # [0] IMPLICIT
               alg, tlv(0x04, value))


def cmd_sign(a):
    with open(a.file, "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if a.time == "none":
        when = None
    elif a.time:
        when = datetime.datetime.strptime(a.time, "%Y-%m-%dT%H:%M:%SZ")
    else:
        when = now + datetime.timedelta(seconds=a.time_offset)
    certs, infos = [], []
    for base in a.signer:
        key, cert = load(base)
        certs.append(cert.public_bytes(serialization.Encoding.DER))
        infos.append(signer_info(key, cert, digest, when))
    for base in a.chain:
        with open(base + ".pem", "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        certs.append(cert.public_bytes(serialization.Encoding.DER))
    signed_data = seq(integer(1), set_of(seq(oid(OID_SHA256), NULL)), seq(oid(OID_DATA)),
                      tlv(0xA0, b"".join(certs)), tlv(0x31, b"".join(infos)))
    der = seq(oid(OID_SIGNED_DATA), tlv(0xA0, signed_data))
    with open(a.out, "wb") as f:
        f.write(der + os.urandom(a.trailing) if a.trailing else der)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cert")
    c.add_argument("dir")
    c.add_argument("name")
    c.add_argument("--issuer")
    c.add_argument("--key", default="rsa:2048")
    c.add_argument("--hash", default="sha256", choices=["sha256", "sha1"])
    c.add_argument("--days-before", type=int, default=1)
    c.add_argument("--days-after", type=int, default=365)
    c.add_argument("--ca", action="store_true")
    s = sub.add_parser("sign")
    s.add_argument("file")
    s.add_argument("out")
    s.add_argument("--signer", action="append", required=True)
    s.add_argument("--chain", action="append", default=[])
    s.add_argument("--time")
    s.add_argument("--time-offset", type=int, default=0)
    s.add_argument("--trailing", type=int, default=0)
    a = p.parse_args()
    cmd_cert(a) if a.cmd == "cert" else cmd_sign(a)


if __name__ == "__main__":
    sys.exit(main())
