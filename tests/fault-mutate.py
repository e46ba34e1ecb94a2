#!/usr/bin/env python3
"""Mutated inputs through the real caback (a helper of tests/test-fault-mutate.sh).

usage: fault-mutate.py p12 CABACK FILE.p12 PASSWORD_FILE DB RESULT.json [SEED]
       fault-mutate.py p12nomac CABACK FILE.p12 PASSWORD_FILE DB RESULT.json COUNT [SEED]
       fault-mutate.py families CABACK PASSWORD_FILE DB RESULT.json [SEED]
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
families: structured mutations of what issue 16 bounds, each through "caback list" and
"caback restore" into DB (a failed restore must leave DB as it was): sizes (--max-input-size
around the file's size, trailing megabytes, DER lengths claiming 2 GiB, salts and IVs of 0 to
70,000 bytes), iteration counts (every INTEGER of the file set to values around every limit, up to
2^100 and negative, under --max-kdf-work 50000), names (friendlyNames with bidi overrides, NUL,
control characters, lone surrogates, odd lengths, 40,000 characters), certificate counts (the
certificate bag 2, 50 and 2,000 times, none) and key sizes and kinds (RSA-512, RSA-1024, exponent
3, P-384, P-521, secp256k1, Ed25519, DSA-1024), the files made with openssl.
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


def try_list(caback, r, kind, where, mutated, password_file, extra=()):
    """caback list on the mutated file, counted in @r; returns its status."""
    status, err = run([caback, "list", mutated, "-w", password_file, "--json"] + list(extra))
    r["list_runs"] += 1
    if crashed(status):
        r["crashes"] += 1
        r["problems"].append({"verb": "list", "mutation": kind, "at": where, "status": status, "stderr": err[-800:]})
    if status == 0:
        r["listed_ok"] += 1
    return status


def try_restore(caback, r, kind, where, mutated, password_file, db, pristine, before_state=None,
                extra=()):
    """caback restore of the mutated file into DB, counted in @r. A failed restore must leave
    DB's files byte-identical; with @before_state, one whose files changed but whose contents (as
    certutil shows them) are back to @before_state counts as undone, not partial. DB is put back
    from @pristine whenever its files changed."""
    before = files_digest(db)
    status, err = run([caback, "restore", "-q", "-i", mutated, "-w", password_file,
                       "-d", db, "-f", db + ".pass", "--no-signature-check"] + list(extra))
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


# ---- families: structured mutations of what issue 16 bounds ----

def load_editor():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "p12edit", os.path.join(os.path.dirname(os.path.abspath(__file__)), "p12-edit.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_p12(work, name, newkey, password_file, plain=False):
    """A PKCS#12 file of one self-signed certificate with a key made by "openssl req -newkey
    NEWKEY" (or genpkey options when NEWKEY is a list): PBES2 and a MAC at 1,000 iterations, or,
    with @plain, no encryption and no MAC (so that its bags can be edited)."""
    key, crt, out = (os.path.join(work, name + ext) for ext in (".key", ".crt", ".p12"))
    if isinstance(newkey, list):
        openssl("genpkey", *newkey, "-out", key)
        openssl("req", "-x509", "-key", key, "-nodes", "-subj", "/CN=family " + name,
                "-days", "30", "-out", crt)
    else:
        openssl("req", "-x509", "-newkey", newkey, "-nodes", "-subj", "/CN=family " + name,
                "-days", "30", "-keyout", key, "-out", crt)
    args = ["pkcs12", "-export", "-in", crt, "-inkey", key, "-name", "family " + name,
            "-passout", "file:" + password_file, "-out", out]
    if plain:
        args += ["-keypbe", "NONE", "-certpbe", "NONE", "-nomac"]
    else:
        args += ["-iter", "1000"]
    openssl(*args)
    return out


def family_mutations(work, password_file, rng):
    """(family, description, bytes, extra caback options) for every structured mutation."""
    edit = load_editor()
    base = make_p12(work, "base", "ec:" + ec_params(work, "prime256v1"), password_file)
    plain = make_p12(work, "plain", "ec:" + ec_params(work, "prime256v1"), password_file, True)
    data = open(base, "rb").read()
    pdata = open(plain, "rb").read()
    out = []

    # Sizes: the input size limit at and around the file's size, trailing bytes, DER lengths
    # that claim gigabytes, salts and names of absurd sizes.
    out.append(("sizes", "--max-input-size one byte short", data, ["--max-input-size", str(len(data) - 1)]))
    out.append(("sizes", "--max-input-size exactly", data, ["--max-input-size", str(len(data))]))
    out.append(("sizes", "1 MB of zeros after the PFX", data + bytes(1 << 20), []))
    out.append(("sizes", "1 MB of zeros, limit below", data + bytes(1 << 20), ["--max-input-size", str(len(data) + 1000)]))
    for lpos in der_length_offsets(data)[:12]:
        first = data[lpos]
        n = first & 0x7F if first & 0x80 else 0
        blob = data[:lpos] + b"\x84\x7f\xff\xff\xff" + data[lpos + 1 + n:]
        out.append(("sizes", "length at %d claims 2 GiB" % lpos, blob, []))
    tree = edit.parse(data)
    octets = [node for node in edit.walk(tree) if node.tag == 0x04 and node.value is not None
              and 8 <= len(node.value) <= 32]
    for i, node in enumerate(octets):
        saved = node.value
        for size in (0, 1, 2000, 70000):
            node.value = bytes(rng.randrange(256) for _ in range(size))
            out.append(("sizes", "short OCTET STRING %d (salt or IV) of %d bytes" % (i, size), edit.encode(tree), []))
        node.value = saved

    # Iteration counts: every INTEGER of the file (the MAC's and each PBKDF2's count among them)
    # as values around every limit, under a small work limit so that no run derives for long.
    values = (0, -1, 1, 999, 10000000, 10000001, 1 << 31, (1 << 32) + 1, 1 << 63, 1 << 64,
              1 << 100, -(1 << 70))
    ints = [node for node in edit.walk(tree) if node.tag == 0x02 and node.value is not None]
    for i, node in enumerate(ints):
        saved = node.value
        for v in values:
            node.value = edit.int_bytes(v)
            out.append(("iterations", "INTEGER %d = %d" % (i, v), edit.encode(tree), ["--max-kdf-work", "50000"]))
        node.value = saved
    out.append(("iterations", "the file under --max-kdf-work 2999", data, ["--max-kdf-work", "2999"]))
    out.append(("iterations", "the file under --max-kdf-work 3000", data, ["--max-kdf-work", "3000"]))

    # Names: friendlyNames (BMPString bytes) that are not what they seem or not UTF-16 at all.
    names = {
        "bidi override": "evil\u202egnp.cod".encode("utf-16-be"),
        "isolates": "\u2066ca\u2069".encode("utf-16-be"),
        "embedded NUL": "ca\x00Signing".encode("utf-16-be"),
        "control characters": "a\x07\x1b[31mred\r\n".encode("utf-16-be"),
        "lone surrogate": b"\xd8\x00\x00a",
        "odd length": b"\x00a\x00",
        "empty": b"",
        "token prefix": "NSS Certificate DB:caSigningCert cert-pki-ca".encode("utf-16-be"),
        "dash": "-Secret1".encode("utf-16-be"),
        "40,000 characters": ("n" * 40000).encode("utf-16-be"),
        "astral": "\U0001F600 key".encode("utf-16-be"),
    }
    ptree_data = pdata
    for label, value in sorted(names.items()):
        ptree = edit.parse(ptree_data)
        for node in edit.walk(ptree):
            if node.tag == 0x30 and node.children and len(node.children) == 2 and \
                    node.children[0].tag == 0x06 and node.children[0].value == edit.FRIENDLY_NAME:
                for v in node.children[1].children or []:
                    v.value = value
        out.append(("names", label, edit.encode(ptree), []))

    # Certificate counts: the certificate bag repeated, and none at all (a key alone).
    for count in (2, 50, 2000):
        ptree = edit.parse(pdata)
        for node in edit.walk(ptree):
            if node.tag == 0x30 and node.children and all(
                    c.tag == 0x30 and c.children and c.children[0].tag == 0x06 for c in node.children):
                bags = [c for c in node.children if c.children[0].value == edit.CERT_BAG]
                if bags:
                    while len(node.children) < count:
                        node.children.append(bags[0])
                    break
        out.append(("certificate counts", "the certificate %d times" % count, edit.encode(ptree), []))
    ptree = edit.parse(pdata)
    for node in edit.walk(ptree):
        if node.tag == 0x30 and node.children and all(
                c.tag == 0x30 and c.children and c.children[0].tag == 0x06 for c in node.children):
            kept = [c for c in node.children if c.children[0].value != edit.CERT_BAG]
            if len(kept) < len(node.children):
                node.children[:] = kept
                break
    out.append(("certificate counts", "no certificate", edit.encode(ptree), []))

    # Key sizes and kinds: weak RSA, small exponent, other curves, DSA, Ed25519.
    kinds = [
        ("rsa512", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"]),
        ("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
        ("rsa2048-e3", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3"]),
        ("p384", "ec:" + ec_params(work, "secp384r1")),
        ("p521", "ec:" + ec_params(work, "secp521r1")),
        ("secp256k1", "ec:" + ec_params(work, "secp256k1")),
        ("ed25519", ["-algorithm", "ED25519"]),
    ]
    dsa_params = os.path.join(work, "dsa.params")
    try:
        openssl("genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:1024", "-out", dsa_params)
        kinds.append(("dsa1024", ["-paramfile", dsa_params]))
    except subprocess.CalledProcessError:
        pass
    for name, newkey in kinds:
        try:
            path = make_p12(work, name, newkey, password_file)
        except subprocess.CalledProcessError:
            continue  # this OpenSSL will not make it
        out.append(("key sizes", name, open(path, "rb").read(), []))
    return out


def ec_params(work, curve):
    path = os.path.join(work, curve + ".params")
    if not os.path.exists(path):
        openssl("ecparam", "-name", curve, "-out", path)
    return path


def do_families(caback, password_file, db, result_path, seed):
    rng = random.Random(seed)
    work = os.path.dirname(os.path.abspath(result_path))
    pristine = db + ".pristine"
    shutil.copytree(db, pristine)
    before_state = db_state(db)
    mutated = os.path.join(work, "family.p12")
    r = {"seed": seed, "files": 0, "families": {}, "list_runs": 0, "listed_ok": 0,
         "restore_runs": 0, "restored_ok": 0, "failed_after_changes_undone": 0, "crashes": 0,
         "partial_imports": 0, "problems": []}
    for family, label, blob, extra in family_mutations(work, password_file, rng):
        r["files"] += 1
        r["families"][family] = r["families"].get(family, 0) + 1
        with open(mutated, "wb") as f:
            f.write(blob)
        where = family + ": " + label
        try_list(caback, r, family, where, mutated, password_file, extra)
        try_restore(caback, r, family, where, mutated, password_file, db, pristine, before_state, extra)
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
    elif mode == "families":
        caback, pw, db, result = sys.argv[2:6]
        seed = int(sys.argv[6]) if len(sys.argv) > 6 else 20261204
        do_families(caback, pw, db, result, seed)
    elif mode == "cscfg":
        caback, path, db, result, count = sys.argv[2:7]
        seed = int(sys.argv[7]) if len(sys.argv) > 7 else 20261122
        do_cscfg(caback, path, db, result, int(count), seed)
    else:
        sys.exit("usage: see the top of this file")


if __name__ == "__main__":
    main()
