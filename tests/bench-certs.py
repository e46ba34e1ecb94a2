#!/usr/bin/env python3
"""A PKCS#12 file of COUNT distinct certificates, for make bench-scale (tests/bench-scale.sh):
plain safes, no password, no MAC, so that what is timed is caback's planning and not key
derivation (so restore needs --allow-unauthenticated to read it).

usage: bench-certs.py BASE.der COUNT OUT.p12

BASE.der is a certificate whose subject and issuer hold the text "bench-cert-0000000": each copy
has it replaced by its own number (same length, so no length changes), which makes COUNT
different self-signed certificates with different subjects. Every other certificate has a
friendlyName ("bench NNNNNNN"); the others get their nickname from their subject, as files from
some writers do.
"""
import sys


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(b)]) + b
    return head + content


def oid(hexbytes):
    return tlv(0x06, bytes.fromhex(hexbytes))


DATA = oid("2a864886f70d010701")             # pkcs7-data
CERT_BAG = oid("2a864886f70d010c0a0103")     # certBag
X509 = oid("2a864886f70d01091601")           # x509Certificate
FRIENDLY = oid("2a864886f70d010914")         # friendlyName


def main():
    base = open(sys.argv[1], "rb").read()
    count = int(sys.argv[2])
    marker = b"bench-cert-0000000"
    if marker not in base:
        sys.exit("bench-certs.py: %s does not hold %s" % (sys.argv[1], marker.decode()))
    bags = []
    for i in range(count):
        der = base.replace(marker, b"bench-cert-%07d" % i)
        value = tlv(0xA0, tlv(0x30, X509 + tlv(0xA0, tlv(0x04, der))))
        attrs = b""
        if i % 2 == 0:
            name = ("bench %07d" % i).encode("utf-16-be")
            attrs = tlv(0x31, tlv(0x30, FRIENDLY + tlv(0x31, tlv(0x1E, name))))
        bags.append(tlv(0x30, CERT_BAG + value + attrs))
    safe = tlv(0x30, b"".join(bags))
    auth_safe = tlv(0x30, tlv(0x30, DATA + tlv(0xA0, tlv(0x04, safe))))
    pfx = tlv(0x30, tlv(0x02, b"\x03") + tlv(0x30, DATA + tlv(0xA0, tlv(0x04, auth_safe))))
    open(sys.argv[3], "wb").write(pfx)


if __name__ == "__main__":
    main()
