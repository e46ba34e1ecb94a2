#!/usr/bin/env python3
"""Independent oracle for caback's key-ID conversion.

Prints one line per key ID: "NSS DOGTAG LEGACY", where NSS is the 40-digit unsigned hex form
(certutil -K), DOGTAG is Java's new BigInteger(bytes).toString(16) computed with Python integers,
and LEGACY is 1 when BigInteger.toByteArray() of that value is shorter than 20 bytes (the IDs
Dogtag before 10.5.6 could not decode), else 0. Deterministic: the same lines on every run.

Usage: keyid-oracle.py [COUNT]   (COUNT random IDs, default 6000, plus the edge cases)
"""
import random
import sys

LEN = 20


def dogtag(b):
    v = int.from_bytes(b, 'big', signed=True)
    return ('-' + format(-v, 'x')) if v < 0 else format(v, 'x')


def legacy(b):
    v = int.from_bytes(b, 'big', signed=True)
    # Java BigInteger.bitLength() ignores the sign bit; toByteArray() has bitLength/8 + 1 bytes.
    bit_length = (~v).bit_length() if v < 0 else v.bit_length()
    return 1 if bit_length // 8 + 1 < LEN else 0


def edge_cases():
    yield bytes(LEN)                                  # 0
    yield b'\xff' * LEN                               # -1
    yield b'\x80' + bytes(LEN - 1)                    # -2^159
    yield b'\x7f' + b'\xff' * (LEN - 1)               # 2^159 - 1
    yield b'\x80' + bytes(LEN - 2) + b'\x01'
    yield b'\x7f' + bytes(LEN - 1)
    yield bytes(LEN - 1) + b'\x01'                    # 1
    yield b'\xff' * (LEN - 1) + b'\xfe'               # -2
    for n in range(LEN + 1):                          # every length of leading 00 / ff
        for fill, tail in ((b'\x00', b'\x7f'), (b'\x00', b'\x80'), (b'\xff', b'\x80'),
                           (b'\xff', b'\x7f'), (b'\x00', b'\x01'), (b'\xff', b'\xfe')):
            yield (fill * n + tail * LEN)[:LEN]
    for v in range(256):                              # one-byte values, both signs
        yield bytes(LEN - 1) + bytes([v])
        yield b'\xff' * (LEN - 1) + bytes([v])
    for bit in range(8 * LEN):                        # single bits and their complements
        v = 1 << bit
        yield v.to_bytes(LEN, 'big')
        yield ((1 << (8 * LEN)) - 1 - v).to_bytes(LEN, 'big')
    # The worked examples of issue 2.
    for h in ('a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3',
              '6006094af3e5d02aaa91426594ca66cb53e73ac0',
              'ffffffffffffffffceb42c026f8ac01c9782ca73',
              '000000000000000018604db6c7a073ff08338650'):
        yield bytes.fromhex(h)


def random_ids(rng, count):
    for i in range(count):
        b = bytearray(rng.getrandbits(8) for _ in range(LEN))
        kind = i % 6
        if kind == 1:     # forced leading bytes that matter to the sign and the legacy problem
            b[0] = rng.choice((0x00, 0xff, 0x7f, 0x80))
        elif kind == 2:   # short values: several leading 00 or ff bytes
            n = rng.randrange(1, LEN)
            fill = rng.choice((0x00, 0xff))
            for k in range(n):
                b[k] = fill
        elif kind == 3:   # forced first two bytes
            b[0] = rng.choice((0x00, 0xff))
            b[1] = rng.choice((0x00, 0x7f, 0x80, 0xff, rng.getrandbits(8)))
        yield bytes(b)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    rng = random.Random(20240602)
    out = sys.stdout
    for b in list(edge_cases()) + list(random_ids(rng, count)):
        assert len(b) == LEN
        out.write('%s %s %d\n' % (b.hex(), dogtag(b), legacy(b)))


if __name__ == '__main__':
    main()
