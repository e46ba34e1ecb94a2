#!/usr/bin/env python3
"""json-check.py SCHEMA OUTPUT EXIT [EXPRESSION]: OUTPUT (a command's standard output) must be
exactly one JSON object that validates against SCHEMA (doc/caback-json.schema.json), whose "exit"
is EXIT (the status the command exited with); EXPRESSION, when given, is a Python expression over
the object j that must be true. Prints why not and exits 1 otherwise."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
try:
    j, end = json.JSONDecoder().raw_decode(text.lstrip())
except ValueError as e:
    sys.exit("not one JSON object: %s: %r" % (e, text[:300]))
if text.lstrip()[end:].strip():
    sys.exit("more than one JSON value on standard output: %r" % text.lstrip()[end:][:300])
if not isinstance(j, dict):
    sys.exit("not an object: %r" % text[:300])
try:
    jsonschema.Draft202012Validator(schema).validate(j)
except jsonschema.ValidationError as e:
    sys.exit("does not validate: %s at %s" % (e.message, list(e.absolute_path)))
if j["exit"] != int(sys.argv[3]):
    sys.exit("exit %s in the JSON, %s from the process" % (j["exit"], sys.argv[3]))
if len(sys.argv) > 4 and not eval(sys.argv[4], {"j": j}):
    sys.exit("%s is false for %s" % (sys.argv[4], json.dumps(j)[:1500]))
print(j["verb"], j["exit"])
