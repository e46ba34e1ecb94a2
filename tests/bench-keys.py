#!/usr/bin/env python3
"""A PKCS#12 file of COUNT plain EC P-256 key bags, for the memory and time bounds on files of
many keys (tests/test-limits.sh, make bench-scale): plain safe, no password, no MAC, as
tests/bench-certs.py makes certificates (so caback needs --allow-unauthenticated to read it).
Each PKCS#8 carries its public point, which NSS needs for a key without certificate.

With --certs, each key comes with a self-signed certificate of its own ("CN=bench pair N",
serial N + 1), the two bags paired by the same localKeyID: the class of file whose restore
stores a certificate and its key, and checks that the key signs for it, COUNT times.

usage: bench-keys.py [--certs] COUNT OUT.p12
"""
import datetime
import importlib.util
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_spec = importlib.util.spec_from_file_location(
    "bench_certs", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-certs.py"))
bc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bc)

KEY_BAG = bc.oid("2a864886f70d010c0a0101")  # keyBag
LOCAL_KEY_ID = bc.oid("2a864886f70d010915")  # localKeyID
NOT_BEFORE = datetime.datetime(2026, 1, 1)


def certificate(key, i):
    """The DER of a self-signed certificate of KEY, number I."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench pair %07d" % i)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(i + 1)
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_BEFORE + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def main():
    args = sys.argv[1:]
    with_certs = args[:1] == ["--certs"]
    if with_certs:
        args = args[1:]
    if len(args) != 2:
        sys.exit("usage: bench-keys.py [--certs] COUNT OUT.p12")
    count = int(args[0])
    bags = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        attrs = b""
        if with_certs:
            attrs = bc.tlv(0x31, bc.tlv(0x30, LOCAL_KEY_ID +
                                        bc.tlv(0x31, bc.tlv(0x04, i.to_bytes(4, "big")))))
            value = bc.tlv(0x30, bc.X509 + bc.tlv(0xA0, bc.tlv(0x04, certificate(key, i))))
            bags.append(bc.tlv(0x30, bc.CERT_BAG + bc.tlv(0xA0, value) + attrs))
        bags.append(bc.tlv(0x30, KEY_BAG + bc.tlv(0xA0, der) + attrs))
    safe = bc.tlv(0x30, b"".join(bags))
    auth_safe = bc.tlv(0x30, bc.tlv(0x30, bc.DATA + bc.tlv(0xA0, bc.tlv(0x04, safe))))
    pfx = bc.tlv(0x30, bc.tlv(0x02, b"\x03") +
                 bc.tlv(0x30, bc.DATA + bc.tlv(0xA0, bc.tlv(0x04, auth_safe))))
    with open(args[1], "wb") as out:
        out.write(pfx)


if __name__ == "__main__":
    main()
