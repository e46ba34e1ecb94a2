#!/usr/bin/env python3
"""A PKCS#12 file of COUNT plain EC P-256 key bags and no certificate, for the memory bound on
files of many keys (tests/test-limits.sh, make bench-scale): plain safe, no password, no MAC,
as tests/bench-certs.py makes certificates (so caback needs --allow-unauthenticated to read it).
Each PKCS#8 carries its public point, which NSS needs for a key without certificate.

usage: bench-keys.py COUNT OUT.p12
"""
import importlib.util
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_spec = importlib.util.spec_from_file_location(
    "bench_certs", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-certs.py"))
bc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bc)

KEY_BAG = bc.oid("2a864886f70d010c0a0101")  # keyBag


def main():
    count = int(sys.argv[1])
    bags = []
    for _ in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        bags.append(bc.tlv(0x30, KEY_BAG + bc.tlv(0xA0, der)))
    safe = bc.tlv(0x30, b"".join(bags))
    auth_safe = bc.tlv(0x30, bc.tlv(0x30, bc.DATA + bc.tlv(0xA0, bc.tlv(0x04, safe))))
    pfx = bc.tlv(0x30, bc.tlv(0x02, b"\x03") +
                 bc.tlv(0x30, bc.DATA + bc.tlv(0xA0, bc.tlv(0x04, auth_safe))))
    with open(sys.argv[2], "wb") as out:
        out.write(pfx)


if __name__ == "__main__":
    main()
