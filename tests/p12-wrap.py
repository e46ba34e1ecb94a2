#!/usr/bin/env python3
"""Build a PKCS#12 file around a key that a real tool encrypted, for the format tests.

OpenSSL's pkcs12 command cannot choose every PBES2 variant (the PBKDF2 PRF, scrypt, a given
cipher) nor write a MAC with an empty salt (GnuTLS does), but `openssl pkcs8 -topk8` writes
every EncryptedPrivateKeyInfo OpenSSL knows. This puts such a key (or a plain PKCS#8 key) and
certificates into the PFX structure of RFC 7292 and adds the classic MAC (the PKCS#12 KDF of
RFC 7292 appendix B with HMAC), so that caback can be compared with openssl on the result.
Only the standard library: DER is written by hand, the MAC key with hashlib.

usage: p12-wrap.py -o OUT -p PASSWORD [--epki FILE.der | --pkcs8 FILE.der]
                   [--cert FILE.der]... [--name NAME] [--mac sha1|sha256|...|none]
                   [--mac-salt HEX] [--mac-iter N]
"""
import argparse
import hashlib
import hmac
import os
import sys


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def set_of(*parts):
    return tlv(0x31, b"".join(sorted(parts)))


def octets(b):
    return tlv(0x04, b)


def integer(n):
    b = n.to_bytes((n.bit_length() + 8) // 8, "big")
    return tlv(0x02, b)


def explicit0(b):
    return tlv(0xA0, b)


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    out = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


DATA = "1.2.840.113549.1.7.1"
KEY_BAG = "1.2.840.113549.1.12.10.1.1"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
CERT_BAG = "1.2.840.113549.1.12.10.1.3"
X509_CERT = "1.2.840.113549.1.9.22.1"
FRIENDLY_NAME = "1.2.840.113549.1.9.20"
LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
HASHES = {
    "md5": ("1.2.840.113549.2.5", 64),
    "sha1": ("1.3.14.3.2.26", 64),
    "sha224": ("2.16.840.1.101.3.4.2.4", 64),
    "sha256": ("2.16.840.1.101.3.4.2.1", 64),
    "sha384": ("2.16.840.1.101.3.4.2.2", 128),
    "sha512": ("2.16.840.1.101.3.4.2.3", 128),
}


def pkcs12_kdf(hash_name, password, salt, iterations, ident, n):
    """RFC 7292 appendix B.2 with @password already a BMPString with its terminator."""
    u = hashlib.new(hash_name).digest_size
    v = HASHES[hash_name][1]
    d = bytes([ident]) * v

    def fill(data):
        if not data:
            return b""
        length = v * ((len(data) + v - 1) // v)
        return (data * (length // len(data) + 1))[:length]

    i = bytearray(fill(salt) + fill(password))
    out = b""
    while len(out) < n:
        a = hashlib.new(hash_name, d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.new(hash_name, a).digest()
        out += a
        b = int.from_bytes(fill(a)[:v], "big")
        for j in range(0, len(i), v):
            block = int.from_bytes(i[j : j + v], "big")
            i[j : j + v] = ((block + b + 1) % (1 << (8 * v))).to_bytes(v, "big")
    return out[:n]


def attributes(name, key_id):
    attrs = []
    if name is not None:
        attrs.append(seq(oid(FRIENDLY_NAME), set_of(tlv(0x1E, name.encode("utf-16-be")))))
    attrs.append(seq(oid(LOCAL_KEY_ID), set_of(octets(key_id))))
    return set_of(*attrs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("-p", "--password", required=True)
    ap.add_argument("--epki", help="an EncryptedPrivateKeyInfo (DER), e.g. from openssl pkcs8 -topk8")
    ap.add_argument("--pkcs8", help="a plain PrivateKeyInfo (DER), written as a KeyBag")
    ap.add_argument("--scrypt-epki", metavar="N,R,P",
                    help="instead of a key: an EncryptedPrivateKeyInfo under PBES2 with these scrypt "
                    "parameters and AES-256-CBC whose ciphertext is random (for refusals that come "
                    "before any derivation)")
    ap.add_argument("--cert", action="append", default=[], help="a certificate (DER)")
    ap.add_argument("--name", default=None, help="friendlyName of the key and first certificate")
    ap.add_argument("--mac", default="sha256", choices=sorted(HASHES) + ["none"])
    ap.add_argument("--mac-salt", default=None, help="the MAC salt in hex ('' for an empty salt)")
    ap.add_argument("--mac-iter", type=int, default=2048)
    a = ap.parse_args()

    key_id = b"\x01\x02\x03\x04"
    bags = []
    for n, path in enumerate(a.cert):
        with open(path, "rb") as f:
            cert = f.read()
        value = seq(oid(X509_CERT), explicit0(octets(cert)))
        attrs = attributes(a.name, key_id) if n == 0 and (a.epki or a.pkcs8 or a.scrypt_epki) else b""
        bags.append(seq(oid(CERT_BAG), explicit0(value), *([attrs] if attrs else [])))
    if a.scrypt_epki:
        n, r, p = (int(x) for x in a.scrypt_epki.split(","))
        kdf = seq(oid("1.3.6.1.4.1.11591.4.11"), seq(octets(os.urandom(8)), integer(n), integer(r), integer(p)))
        scheme = seq(oid("2.16.840.1.101.3.4.1.42"), octets(os.urandom(16)))
        alg = seq(oid("1.2.840.113549.1.5.13"), seq(kdf, scheme))
        bags.append(seq(oid(SHROUDED_KEY_BAG), explicit0(seq(alg, octets(os.urandom(64)))),
                        attributes(a.name, key_id)))
    if a.epki or a.pkcs8:
        with open(a.epki or a.pkcs8, "rb") as f:
            key = f.read()
        bag_id = SHROUDED_KEY_BAG if a.epki else KEY_BAG
        bags.append(seq(oid(bag_id), explicit0(key), attributes(a.name, key_id)))
    safe = seq(oid(DATA), explicit0(octets(seq(*bags))))
    auth_safe = seq(safe)
    pfx = [integer(3), seq(oid(DATA), explicit0(octets(auth_safe)))]
    if a.mac != "none":
        salt = os.urandom(8) if a.mac_salt is None else bytes.fromhex(a.mac_salt)
        password = (a.password + "\0").encode("utf-16-be")
        size = hashlib.new(a.mac).digest_size
        mac_key = pkcs12_kdf(a.mac, password, salt, a.mac_iter, 3, size)
        digest = hmac.new(mac_key, auth_safe, a.mac).digest()
        alg = seq(oid(HASHES[a.mac][0]), tlv(0x05, b""))
        pfx.append(seq(seq(alg, octets(digest)), octets(salt), integer(a.mac_iter)))
    with open(a.out, "wb") as f:
        f.write(seq(*pfx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
