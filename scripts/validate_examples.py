#!/usr/bin/env python3
"""Validate every example message in schemas/examples/ with a standard JSON Schema validator.

The reference side of the agreement test (Tests/ARContractTests/ContractAgreementTests.swift):
the daemon validates with its own validator over the same schema files, and the test requires
both to give the same verdict on every example, and that verdict to match the example's folder
(valid/ or invalid/).

Uses python3-jsonschema (Debian 4.10.3: RefResolver; newer versions work the same way here):
Draft202012Validator with FormatChecker; `$ref`s between the files in schemas/ resolve through
a store keyed by each file's URI.

Output, one line per example, sorted by path relative to schemas/examples/:
    valid   valid/invoice.issued/basic.json
    invalid invalid/invoice.issued/amount_not_string--number.json   data/amount: 12.5 is not of type 'string'
Exit status 0 when it ran (verdicts are judged by the caller), 2 when jsonschema is missing.

Examples are read as strict JSON, like the daemon: duplicate keys, NaN/Infinity and lone
surrogates make an example "invalid (not json)" rather than being silently accepted.
"""
import json
import warnings
import pathlib
import sys

# Newer jsonschema deprecates RefResolver; it still works and 4.10.3 has nothing else.
warnings.filterwarnings("ignore", category=DeprecationWarning)

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError:
    print("python3-jsonschema is not installed (apt-get install python3-jsonschema)", file=sys.stderr)
    sys.exit(2)

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"


class NotJSON(Exception):
    pass


def reject_duplicates(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise NotJSON("duplicate key")
    return dict(pairs)


def reject_constant(name):
    raise NotJSON(f"non-JSON constant {name}")


def strict_load(text):
    value = json.loads(text, object_pairs_hook=reject_duplicates, parse_constant=reject_constant)
    # A lone surrogate escape decodes to an unencodable str; RFC 8259 text cannot carry one.
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def load_schemas():
    store = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        store[path.as_uri()] = json.loads(path.read_text(encoding="utf-8"))
    return store


def validator_for(message_type, store):
    path = SCHEMAS / f"{message_type}.json"
    schema = store.get(path.as_uri())
    if schema is None:
        return None
    resolver = jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store)
    return Draft202012Validator(schema, resolver=resolver, format_checker=FormatChecker())


def main():
    store = load_schemas()
    for path in sorted(EXAMPLES.glob("*/*/*.json")):
        relative = path.relative_to(EXAMPLES).as_posix()
        message_type = path.parent.name
        try:
            instance = strict_load(path.read_bytes().decode("utf-8"))
        except (ValueError, NotJSON, UnicodeError) as error:
            print(f"invalid\t{relative}\tnot json: {error}")
            continue
        validator = validator_for(message_type, store)
        if validator is None:
            print(f"invalid\t{relative}\tno schema for type {message_type}")
            continue
        errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(part) for part in first.absolute_path)
            print(f"invalid\t{relative}\t{where}: {first.message[:200]}")
        else:
            print(f"valid\t{relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
