#!/usr/bin/env python3
"""What a PKCS#12 file holds, as sorted lines "cert SHA256-FINGERPRINT" and "key NSS-KEY-ID" (or
"key TYPE" for a key NSS cannot hold), from one of two sources, so that the format tests can
compare caback with a peer:

  p12-facts.py openssl FILE   FILE is the output of `openssl pkcs12 -nodes` (PEM blocks); the
                              key IDs are computed here with pyca/cryptography the way NSS makes
                              them (SHA-1 of the RSA modulus, of the EC point, of the DSA public
                              value).
  p12-facts.py caback FILE    FILE is the output of `caback list --json`.
"""
import hashlib
import json
import re
import sys


def openssl_facts(text):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, ed448, rsa, x25519, x448

    out = []
    for m in re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, re.S):
        kind, block = m.group(1), m.group(0)
        data = block.encode()
        if kind == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(data)
            fp = cert.fingerprint(hashes.SHA256()).hex().upper()
            out.append("cert " + ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)))
        elif kind.endswith("PRIVATE KEY"):
            key = serialization.load_pem_private_key(data, password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                n = key.public_key().public_numbers().n
                value = n.to_bytes((n.bit_length() + 7) // 8, "big")
            elif isinstance(key, ec.EllipticCurvePrivateKey):
                value = key.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
            elif isinstance(key, dsa.DSAPrivateKey):
                y = key.public_key().public_numbers().y
                value = y.to_bytes((y.bit_length() + 7) // 8, "big")
            else:
                names = {
                    ed25519.Ed25519PrivateKey: "ed25519",
                    ed448.Ed448PrivateKey: "ed448",
                    x25519.X25519PrivateKey: "x25519",
                    x448.X448PrivateKey: "x448",
                }
                name = next((v for k, v in names.items() if isinstance(key, k)), "unknown")
                out.append("key " + name)
                continue
            out.append("key " + hashlib.sha1(value).hexdigest())
    return out


def caback_facts(text):
    r = json.loads(text)
    out = ["cert " + c["sha256_fingerprint"] for c in r["certificates"]]
    for k in r["keys"]:
        out.append("key " + (k["id"] if k["id"] else str(k["type"])))
    return out


def main():
    source, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    facts = openssl_facts(text) if source == "openssl" else caback_facts(text)
    for line in sorted(facts):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
