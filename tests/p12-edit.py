#!/usr/bin/env python3
"""Structured edits of a DER PKCS#12 file, for tests/test-limits.sh and the mutation families of
tests/fault-mutate.py: the file is parsed into a tree of DER elements (descending into OCTET
STRINGs that hold one DER SEQUENCE, as PKCS#12 nests its safes), a field is changed, and every
length around it is encoded again. The MAC is not recomputed: caback checks the parameters of
every safe before the MAC, and tests that need the bags read strip the MAC (nomac).

usage: p12-edit.py iterations IN OUT OLD NEW     every INTEGER equal to OLD becomes NEW (NEW may
                                                 be negative or above 2^64)
       p12-edit.py nomac IN OUT                  the PFX without its MacData
       p12-edit.py names IN OUT HEX              every friendlyName BMPString becomes the bytes
                                                 HEX (any bytes: odd lengths, lone surrogates)
       p12-edit.py certs IN OUT N                the first certificate bag of a plain safe
                                                 repeated until the safe holds N bags
"""
import sys


class Node:
    def __init__(self, tag, value=None, children=None, wrapped=False):
        self.tag = tag
        self.value = value          # bytes of a primitive element
        self.children = children    # list of Node for a constructed one (or a wrapped OCTET STRING)
        self.wrapped = wrapped      # an OCTET STRING whose content was parsed as DER


def encode_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def parse(data, start=0, end=None, depth=0):
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        tag = data[pos]
        first = data[pos + 1]
        if first < 0x80:
            length, hdr = first, 2
        else:
            n = first & 0x7F
            if n == 0 or n > 4:
                raise ValueError("unsupported length at %d" % pos)
            length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
            hdr = 2 + n
        body = pos + hdr
        if body + length > end:
            raise ValueError("element at %d runs past its parent" % pos)
        content = data[body:body + length]
        if tag & 0x20:
            out.append(Node(tag, children=parse(data, body, body + length, depth + 1)))
        elif tag == 0x04 and depth < 16 and content[:1] == b"\x30":
            try:
                kids = parse(content, 0, len(content), depth + 1)
                if len(kids) == 1 and encode(kids) == content:
                    out.append(Node(tag, children=kids, wrapped=True))
                else:
                    out.append(Node(tag, value=content))
            except (ValueError, IndexError):
                out.append(Node(tag, value=content))
        else:
            out.append(Node(tag, value=content))
        pos = body + length
    return out


def encode(nodes):
    out = bytearray()
    for n in nodes:
        content = encode(n.children) if n.children is not None else n.value
        out += bytes([n.tag]) + encode_length(len(content)) + content
    return bytes(out)


def int_bytes(v):
    n = max(1, (v.bit_length() + 8) // 8)
    return v.to_bytes(n, "big", signed=True)


def walk(nodes):
    for n in nodes:
        yield n
        if n.children is not None:
            yield from walk(n.children)


FRIENDLY_NAME = bytes.fromhex("2a864886f70d010914")  # 1.2.840.113549.1.9.20
CERT_BAG = bytes.fromhex("2a864886f70d010c0a0103")   # 1.2.840.113549.1.12.10.1.3


def main():
    op, src, dst = sys.argv[1:4]
    tree = parse(open(src, "rb").read())
    changed = 0
    if op == "iterations":
        old, new = int(sys.argv[4]), int(sys.argv[5])
        for n in walk(tree):
            if n.tag == 0x02 and n.value is not None and \
                    int.from_bytes(n.value, "big", signed=True) == old:
                n.value = int_bytes(new)
                changed += 1
    elif op == "nomac":
        pfx = tree[0]
        if len(pfx.children) == 3:
            pfx.children.pop()
            changed = 1
    elif op == "names":
        value = bytes.fromhex(sys.argv[4])
        for n in walk(tree):
            # Attribute ::= SEQUENCE { OID friendlyName, SET { BMPString } }
            if n.tag == 0x30 and n.children and len(n.children) == 2 and \
                    n.children[0].tag == 0x06 and n.children[0].value == FRIENDLY_NAME:
                for v in n.children[1].children or []:
                    v.value = value
                    changed += 1
    elif op == "certs":
        count = int(sys.argv[4])
        for n in walk(tree):
            # A SafeContents: a SEQUENCE of SafeBags, one of which is a certificate bag.
            if n.tag == 0x30 and n.children and all(
                    c.tag == 0x30 and c.children and c.children[0].tag == 0x06
                    for c in n.children):
                bags = [c for c in n.children if c.children[0].value == CERT_BAG]
                if bags:
                    while len(n.children) < count:
                        n.children.append(bags[0])
                    changed = 1
                    break
    else:
        sys.exit("unknown operation " + op)
    if changed == 0:
        sys.exit("p12-edit.py %s: nothing to change in %s" % (op, src))
    open(dst, "wb").write(encode(tree))


if __name__ == "__main__":
    main()
