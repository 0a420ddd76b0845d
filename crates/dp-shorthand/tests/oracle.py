"""The reference side of the differential test: parses every input with awscli's ShorthandParser.

Usage: python3 oracle.py INPUTS.json  -> prints a JSON list of outcomes, one per input, in the same text form as
tests/it/support.rs: the tree as compact JSON, "error <expected> <received> @<index>", "duplicate <key> @<index>",
or "file <message>".
"""
import json
import sys

# awscli.shorthand must be imported before awscli.paramfile, or their circular import fails.
from awscli.shorthand import DuplicateKeyInObjectError, ShorthandParser, ShorthandParseSyntaxError
from awscli.paramfile import ResourceLoadingError  # noqa: E402  (order matters, see above)


def text(s):
    return json.dumps(s, ensure_ascii=False)


def tree(v):
    if isinstance(v, str):
        return text(v)
    if isinstance(v, bytes):
        return 'b' + text(v.decode('utf-8', 'replace'))
    if isinstance(v, list):
        return '[' + ','.join(tree(x) for x in v) + ']'
    return '{' + ','.join(text(k) + ':' + tree(x) for k, x in v.items()) + '}'


def outcome(s):
    try:
        return tree(ShorthandParser().parse(s))
    except ShorthandParseSyntaxError as e:
        return f"error {e.expected} {e.actual} @{e.index}"
    except DuplicateKeyInObjectError as e:
        return f"duplicate {e.key} @{e.index}"
    except ResourceLoadingError as e:
        return f"file {e}"


with open(sys.argv[1], encoding='utf-8') as f:
    inputs = json.load(f)
json.dump([outcome(s) for s in inputs], sys.stdout, ensure_ascii=False)
