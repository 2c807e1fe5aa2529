"""Appends one JSON line to FILE: the KEY=VALUE fields (numbers where they
parse as numbers) plus "data", the JSON document a benchmarked program
printed. Usage: record.py FILE DATA_JSON KEY=VALUE...; DATA_JSON "-" reads it
from stdin (documents too large for an argument)."""
import json
import sys


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


path = sys.argv[1]
data = json.loads(sys.stdin.read() if sys.argv[2] == "-" else sys.argv[2])
fields = dict(arg.split("=", 1) for arg in sys.argv[3:])
with open(path, "a") as out:
    out.write(json.dumps({**{k: value(v) for k, v in fields.items()}, "data": data}) + "\n")
