#!/usr/bin/env python3
"""Test fixture: put RSA private keys onto a PKCS#11 token as *extractable* objects.

NSS (pk12util, certutil, PK11_UnwrapPrivKey) never sets CKA_EXTRACTABLE when it creates a key on
a token, and SoftHSM2 then defaults it to false; softhsm2-util --import and p11tool do the same.
To test backups from a token whose keys may leave it, this script calls C_CreateObject itself
(key material in the clear is acceptable in a test fixture only). The CKA_ID is SHA-1 of the
modulus, as NSS computes it, so that NSS pairs each key with its certificate.

usage: p11-import-extractable.py MODULE TOKEN_LABEL PIN KEY.pem...
Exit 77 when the Python "cryptography" package is missing (the caller skips).
"""
import ctypes
import hashlib
import sys

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:
    sys.exit(77)

CK_ULONG = ctypes.c_ulong
CKF_SERIAL_SESSION, CKF_RW_SESSION = 0x4, 0x2
CKU_USER = 1
CKO_PRIVATE_KEY, CKK_RSA = 3, 0
CKA = dict(CLASS=0x0, TOKEN=0x1, PRIVATE=0x2, KEY_TYPE=0x100, ID=0x102, SENSITIVE=0x103,
           DECRYPT=0x105, SIGN=0x108, MODULUS=0x120, PUBLIC_EXPONENT=0x122,
           PRIVATE_EXPONENT=0x123, PRIME_1=0x124, PRIME_2=0x125, EXPONENT_1=0x126,
           EXPONENT_2=0x127, COEFFICIENT=0x128, EXTRACTABLE=0x162)


class Attribute(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("pValue", ctypes.c_void_p), ("ulValueLen", CK_ULONG)]


class TokenInfo(ctypes.Structure):
    _fields_ = [("label", ctypes.c_char * 32), ("rest", ctypes.c_char * 4096)]


def check(rv, what):
    if rv != 0:
        sys.exit("%s failed: CKR 0x%x" % (what, rv))


def to_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def main():
    module, label, pin, keys = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4:]
    p11 = ctypes.CDLL(module)
    check(p11.C_Initialize(None), "C_Initialize")
    count = CK_ULONG(0)
    check(p11.C_GetSlotList(ctypes.c_ubyte(1), None, ctypes.byref(count)), "C_GetSlotList")
    slots = (CK_ULONG * count.value)()
    check(p11.C_GetSlotList(ctypes.c_ubyte(1), slots, ctypes.byref(count)), "C_GetSlotList")
    slot = None
    for s in slots[: count.value]:
        info = TokenInfo()
        check(p11.C_GetTokenInfo(CK_ULONG(s), ctypes.byref(info)), "C_GetTokenInfo")
        if info.label.decode().rstrip() == label:
            slot = s
    if slot is None:
        sys.exit("no token labelled %s" % label)
    session = CK_ULONG(0)
    check(p11.C_OpenSession(CK_ULONG(slot), CK_ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION), None,
                            None, ctypes.byref(session)), "C_OpenSession")
    check(p11.C_Login(session, CK_ULONG(CKU_USER), pin, CK_ULONG(len(pin))), "C_Login")
    keep = []

    def attr(t, value):
        if isinstance(value, bool):
            buf = ctypes.create_string_buffer(b"\x01" if value else b"\x00", 1)
        elif isinstance(value, int):
            buf = CK_ULONG(value)
        else:
            buf = ctypes.create_string_buffer(value, len(value))
        keep.append(buf)
        return Attribute(CKA[t], ctypes.cast(ctypes.pointer(buf), ctypes.c_void_p),
                         ctypes.sizeof(buf))

    for path in keys:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        priv = key.private_numbers()
        pub = priv.public_numbers
        modulus = to_bytes(pub.n)
        template = [
            attr("CLASS", CKO_PRIVATE_KEY), attr("KEY_TYPE", CKK_RSA), attr("TOKEN", True),
            attr("PRIVATE", True), attr("SENSITIVE", True), attr("EXTRACTABLE", True),
            attr("SIGN", True), attr("DECRYPT", True),
            attr("ID", hashlib.sha1(modulus).digest()), attr("MODULUS", modulus),
            attr("PUBLIC_EXPONENT", to_bytes(pub.e)), attr("PRIVATE_EXPONENT", to_bytes(priv.d)),
            attr("PRIME_1", to_bytes(priv.p)), attr("PRIME_2", to_bytes(priv.q)),
            attr("EXPONENT_1", to_bytes(priv.dmp1)), attr("EXPONENT_2", to_bytes(priv.dmq1)),
            attr("COEFFICIENT", to_bytes(priv.iqmp)),
        ]
        array = (Attribute * len(template))(*template)
        handle = CK_ULONG(0)
        check(p11.C_CreateObject(session, array, CK_ULONG(len(template)), ctypes.byref(handle)),
              "C_CreateObject for " + path)
    p11.C_Logout(session)
    p11.C_CloseSession(session)
    p11.C_Finalize(None)


if __name__ == "__main__":
    main()
