#!/usr/bin/env python3
"""Mutated inputs through the real caback (a helper of tests/test-fault-mutate.sh).

usage: fault-mutate.py p12 CABACK FILE.p12 PASSWORD_FILE DB RESULT.json [SEED]
       fault-mutate.py p12nomac CABACK FILE.p12 PASSWORD_FILE DB RESULT.json COUNT [SEED]
       fault-mutate.py cscfg CABACK CS.cfg DB RESULT.json COUNT [SEED]

p12: every truncation of FILE.p12, bit flips and DER length-field edits, at least 1,000 files in
all, each through "caback list"; those that list, and every 10th of the others, also through
"caback restore" into DB (a copy is restored from a pristine one after each success). A failed
restore must leave DB's files byte-identical.
p12nomac: FILE.p12 without its MAC (which caback accepts, with a warning), so that mutations
reach the safes, bags and encrypted keys instead of stopping at the MAC: COUNT bit flips and every
DER length-field edit, each through "caback list" and "caback restore" into DB. A restore may then
fail halfway (a key that does not decrypt after others were imported): DB must then show what it
held before (certutil -L and -K compared with the pristine copy).
cscfg: COUNT mutations of CS.cfg (bit flips, truncations, inserted and repeated lines, NUL and
invalid UTF-8 bytes, very long lines) through "caback fix-clone-ids --dry-run" against DB.

A crash is a process killed by a signal, an exit status above 6 (caback uses 0 to 6; the
sanitizers exit with 86) or a run over 60 s. RESULT.json gets the counts and the first problems,
each with the mutation that caused it, so that it can be replayed from SEED.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys


def run(argv, env=None):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=env)
        return p.returncode, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return "timeout", ""


def crashed(status):
    return status == "timeout" or status < 0 or status > 6


def der_length_offsets(data, start=0, end=None, depth=0, out=None):
    """Offsets of the length octets of every DER element found, descending into constructed
    elements and into OCTET STRINGs that hold DER (as PKCS#12 nests its safes)."""
    if out is None:
        out = []
    end = len(data) if end is None else end
    pos = start
    while pos + 2 <= end and depth < 12:
        tag = data[pos]
        lpos = pos + 1
        first = data[lpos]
        if first < 0x80:
            length, hdr = first, 2
        elif first in (0x81, 0x82, 0x83) and lpos + (first & 0x7F) < end:
            n = first & 0x7F
            length = int.from_bytes(data[lpos + 1:lpos + 1 + n], "big")
            hdr = 2 + n
        else:
            return out
        if pos + hdr + length > end:
            return out
        out.append(lpos)
        body = pos + hdr
        if tag & 0x20 or tag == 0x04:
            der_length_offsets(data, body, body + length, depth + 1, out)
        pos = body + length
    return out


def p12_mutations(data, rng):
    muts = []
    for n in range(len(data)):
        muts.append(("truncate", n, data[:n]))
    for lpos in der_length_offsets(data):
        for delta in (-1, 1, 0x40):
            b = bytearray(data)
            b[lpos] = (b[lpos] + delta) & 0xFF
            muts.append(("length %+d at %d" % (delta, lpos), lpos, bytes(b)))
        b = bytearray(data)
        b[lpos:lpos + 1] = b"\x84\xff\xff\xff\xf0"
        muts.append(("length huge at %d" % lpos, lpos, bytes(b)))
    flips = max(300, 1000 - len(muts))
    for _ in range(flips):
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        muts.append(("bit flip", i, bytes(b)))
    return muts


def files_digest(db):
    h = hashlib.sha256()
    for name in ("cert9.db", "key4.db"):
        with open(os.path.join(db, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def try_list(caback, r, kind, where, mutated, password_file):
    """caback list on the mutated file, counted in @r; returns its status."""
    status, err = run([caback, "list", mutated, "-w", password_file, "--json"])
    r["list_runs"] += 1
    if crashed(status):
        r["crashes"] += 1
        r["problems"].append({"verb": "list", "mutation": kind, "at": where, "status": status, "stderr": err[-800:]})
    if status == 0:
        r["listed_ok"] += 1
    return status


def try_restore(caback, r, kind, where, mutated, password_file, db, pristine, before_state=None):
    """caback restore of the mutated file into DB, counted in @r. A failed restore must leave
    DB's files byte-identical; with @before_state, one whose files changed but whose contents (as
    certutil shows them) are back to @before_state counts as undone, not partial. DB is put back
    from @pristine whenever its files changed."""
    before = files_digest(db)
    status, err = run([caback, "restore", "-q", "-i", mutated, "-w", password_file,
                       "-d", db, "-f", db + ".pass", "--no-signature-check"])
    r["restore_runs"] += 1
    if crashed(status):
        r["crashes"] += 1
        r["problems"].append({"verb": "restore", "mutation": kind, "at": where, "status": status, "stderr": err[-800:]})
    changed = files_digest(db) != before
    if status == 0:
        r["restored_ok"] += 1
    elif changed:
        if before_state is not None and db_state(db) == before_state:
            r["failed_after_changes_undone"] += 1
        else:
            r["partial_imports"] += 1
            r["problems"].append({"verb": "restore", "mutation": kind, "at": where, "status": status,
                                  "problem": "the database changed although the restore failed",
                                  "stderr": err[-800:], "state": db_state(db)})
    if changed:
        shutil.rmtree(db)
        shutil.copytree(pristine, db)


def do_p12(caback, path, password_file, db, result_path, seed):
    rng = random.Random(seed)
    data = open(path, "rb").read()
    work = os.path.dirname(os.path.abspath(result_path))
    pristine = db + ".pristine"
    shutil.copytree(db, pristine)
    mutated = os.path.join(work, "mutated.p12")
    r = {"seed": seed, "base_size": len(data), "files": 0, "truncations": 0, "length_edits": 0,
         "bit_flips": 0, "list_runs": 0, "listed_ok": 0, "restore_runs": 0, "restored_ok": 0,
         "crashes": 0, "partial_imports": 0, "problems": []}
    for kind, where, blob in p12_mutations(data, rng):
        r["files"] += 1
        key = "truncations" if kind == "truncate" else "length_edits" if kind.startswith("length") else "bit_flips"
        r[key] += 1
        with open(mutated, "wb") as f:
            f.write(blob)
        status = try_list(caback, r, kind, where, mutated, password_file)
        if status != 0 and r["files"] % 10 != 0:
            continue
        try_restore(caback, r, kind, where, mutated, password_file, db, pristine)
    del r["problems"][20:]
    json.dump(r, open(result_path, "w"), indent=1)


def der_header(data, pos):
    first = data[pos + 1]
    if first < 0x80:
        return first, 2
    n = first & 0x7F
    return int.from_bytes(data[pos + 2:pos + 2 + n], "big"), 2 + n


def der_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def strip_mac(data):
    """The PFX without its macData: SEQUENCE { version, authSafe }."""
    length, hdr = der_header(data, 0)
    pos, elems = hdr, []
    while pos < hdr + length:
        l, h = der_header(data, pos)
        elems.append(data[pos:pos + h + l])
        pos += h + l
    body = elems[0] + elems[1]
    return b"\x30" + der_length(len(body)) + body


def db_state(db):
    """What certutil shows of DB: nicknames with trust, keys with IDs (sorted)."""
    out = []
    p = subprocess.run(["certutil", "-L", "-d", "sql:" + db], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out += sorted(" ".join(l.split()) for l in p.stdout.decode("utf-8", "replace").splitlines()[4:])
    p = subprocess.run(["certutil", "-K", "-d", "sql:" + db, "-f", db + ".pass"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out += sorted(" ".join(l.split(">", 1)[1].split()) for l in
                  p.stdout.decode("utf-8", "replace").splitlines() if l.startswith("<"))
    return out


def do_p12_nomac(caback, path, password_file, db, result_path, count, seed):
    rng = random.Random(seed)
    data = strip_mac(open(path, "rb").read())
    work = os.path.dirname(os.path.abspath(result_path))
    pristine = db + ".pristine"
    shutil.copytree(db, pristine)
    before_state = db_state(db)
    mutated = os.path.join(work, "mutated-nomac.p12")
    muts = []
    for lpos in der_length_offsets(data):
        for delta in (-1, 1):
            b = bytearray(data)
            b[lpos] = (b[lpos] + delta) & 0xFF
            muts.append(("length %+d at %d" % (delta, lpos), lpos, bytes(b)))
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 2))):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        muts.append(("bit flip", i, bytes(b)))
    r = {"seed": seed, "base_size": len(data), "files": 0, "length_edits": 0, "bit_flips": 0,
         "list_runs": 0, "listed_ok": 0, "restore_runs": 0, "restored_ok": 0,
         "failed_after_changes_undone": 0, "crashes": 0, "partial_imports": 0, "problems": []}
    for kind, where, blob in muts:
        r["files"] += 1
        r["length_edits" if kind.startswith("length") else "bit_flips"] += 1
        with open(mutated, "wb") as f:
            f.write(blob)
        try_list(caback, r, kind, where, mutated, password_file)
        try_restore(caback, r, kind, where, mutated, password_file, db, pristine, before_state)
    del r["problems"][20:]
    json.dump(r, open(result_path, "w"), indent=1)


def cscfg_mutation(text, rng):
    lines = text.split(b"\n")
    kind = rng.choice(("flip", "truncate", "insert line", "repeat line", "delete line", "nul",
                       "invalid utf-8", "long line", "backslash end", "random bytes"))
    b = bytearray(text)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "truncate":
        return kind, text[:rng.randrange(len(text))]
    if kind == "random bytes":
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return kind, bytes(b)
    i = rng.randrange(len(lines))
    if kind == "insert line":
        lines.insert(i, rng.choice((b"cloning.signing.privkey.id=", b"=", b"cloning.", b"\\",
                                    b"cloning.subsystem.privkey.id=-" + b"f" * 200,
                                    b"ca.signing.nickname=caSigningCert cert-pki-ca",
                                    b"cloning.audit_signing.privkey.id=0x12")))
    elif kind == "repeat line":
        lines.insert(i, lines[i])
    elif kind == "delete line":
        del lines[i]
    elif kind == "nul":
        lines[i] = lines[i][:len(lines[i]) // 2] + b"\0" + lines[i][len(lines[i]) // 2:]
    elif kind == "invalid utf-8":
        lines[i] += b"\xff\xfe\xc3"
    elif kind == "long line":
        lines[i] += b"a" * rng.choice((1000, 70000))
    elif kind == "backslash end":
        lines[i] += b"\\"
    return kind, b"\n".join(lines)


def do_cscfg(caback, path, db, result_path, count, seed):
    rng = random.Random(seed)
    text = open(path, "rb").read()
    work = os.path.dirname(os.path.abspath(result_path))
    mutated = os.path.join(work, "CS.cfg")
    r = {"seed": seed, "files": 0, "runs": 0, "exit_0": 0, "crashes": 0, "changed": 0,
         "kinds": {}, "problems": []}
    for n in range(count):
        kind, blob = cscfg_mutation(text, rng)
        with open(mutated, "wb") as f:
            f.write(blob)
        r["files"] += 1
        r["kinds"][kind] = r["kinds"].get(kind, 0) + 1
        status, err = run([caback, "fix-clone-ids", mutated, "-d", db, "-f", db + ".pass", "--dry-run"])
        r["runs"] += 1
        if crashed(status):
            r["crashes"] += 1
            r["problems"].append({"mutation": kind, "n": n, "status": status, "stderr": err[-800:]})
        if status == 0:
            r["exit_0"] += 1
        if open(mutated, "rb").read() != blob:
            r["changed"] += 1
            r["problems"].append({"mutation": kind, "n": n, "problem": "--dry-run changed the file"})
    del r["problems"][20:]
    json.dump(r, open(result_path, "w"), indent=1)


def main():
    mode = sys.argv[1]
    if mode == "p12":
        caback, path, pw, db, result = sys.argv[2:7]
        seed = int(sys.argv[7]) if len(sys.argv) > 7 else 20261122
        do_p12(caback, path, pw, db, result, seed)
    elif mode == "p12nomac":
        caback, path, pw, db, result, count = sys.argv[2:8]
        seed = int(sys.argv[8]) if len(sys.argv) > 8 else 20261122
        do_p12_nomac(caback, path, pw, db, result, int(count), seed)
    elif mode == "cscfg":
        caback, path, db, result, count = sys.argv[2:7]
        seed = int(sys.argv[7]) if len(sys.argv) > 7 else 20261122
        do_cscfg(caback, path, db, result, int(count), seed)
    else:
        sys.exit("usage: see the top of this file")


if __name__ == "__main__":
    main()
