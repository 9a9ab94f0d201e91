#!/usr/bin/env python3
"""Optional cross-check of `receivablesd bank parse` against established parsers.

    python -m venv .local/venv-bank && .local/venv-bank/bin/pip install mt-940==5.1.1 bai2==0.15.0
    .local/venv-bank/bin/python fuzz/crosscheck.py [--skip-balance-check] PATH/TO/receivablesd FILE...

MT940 is compared with PyPI mt-940 (signed amounts, value dates, bank references; reversal marks
signed as SWIFT defines them, i.e. mt-940's reversal_sign option), BAI2 with PyPI bai2 (amounts,
directions, bank references, texts of credit/debit details), camt with a plain ElementTree reading
(entry count and signed sum per statement). A file we refuse is run through the reference parser
too: refusing what it reads with entries is a failure (exit 1), unless the refusal is deliberate
(see docs/bank-formats.md, "Lenient and strict"). The last line tallies the verdicts. Not used
by `swift test`.
"""
import decimal
import json
import subprocess
import sys
import xml.etree.ElementTree as ET


EXTRA = []


def ours(binary, path):
    run = subprocess.run([binary, "bank", "parse", *EXTRA, path], capture_output=True, text=True)
    if run.returncode != 0:
        return None, run.stderr.strip()
    return [json.loads(line) for line in run.stdout.splitlines()], None


def signed(entry):
    value = decimal.Decimal(entry["amount"])
    return value if entry["credit_debit"] == "credit" else -value


def reference_count(path, head):
    """Entries the reference parser reads from a file we refused (None: it refuses it too)."""
    try:
        if head.startswith(b"<"):
            return sum(1 for element in ET.parse(path).getroot().iter() if local(element.tag) == "Ntry")
        if head.startswith(b"01,"):
            from bai2 import bai2
            with open(path) as handle:
                parsed = bai2.parse_from_string(handle.read(), check_integrity=True)
            return sum(1 for g in parsed.children for a in g.children for _ in a.children)
        return len(mt940_transactions(path))
    except Exception:  # noqa: BLE001 - any failure of the reference parser means "it refuses it too"
        return None


def mt940_transactions(path):
    """The file through PyPI mt-940 (UTF-8, else Latin-1); raises what mt-940 raises."""
    import mt940
    transactions = mt940.models.Transactions(options=mt940.Options(reversal_sign=True))
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    transactions.parse(text)
    return transactions


def check_mt940(entries, path):
    try:
        transactions = mt940_transactions(path)
    except Exception as error:  # the reference parser refusing a file is a result worth reporting
        return [f"mt-940 failed: {str(error).splitlines()[0][:120]}"]
    theirs = [(t.data["amount"].amount, str(t.data["date"]), t.data.get("bank_reference")) for t in transactions]
    mine = [(signed(e), e["value_date"], None if e["entry_id"].startswith("sha256:") else e["entry_id"]) for e in entries]
    problems = []
    if len(theirs) != len(mine):
        problems.append(f"{len(mine)} entries, mt-940 has {len(theirs)}")
    for index, (a, b) in enumerate(zip(mine, theirs)):
        reference = b[2] if b[2] and b[2].upper() != "NONREF" else None
        if a[0] != b[0] or a[1] != b[1] or a[2] != reference:
            problems.append(f"entry {index}: ours {a}, mt-940 {b}")
    return problems


def check_bai2(entries, path):
    from bai2 import bai2
    try:
        with open(path) as handle:
            parsed = bai2.parse_from_string(handle.read(), check_integrity=True)
    except Exception as error:  # the reference parser refusing a file is a result worth reporting
        return [f"bai2 failed: {str(error).splitlines()[0][:120]}"]
    theirs = []
    for group in parsed.children:
        for account in group.children:
            for detail in account.children:
                kind = detail.type_code.transaction.value if detail.type_code.transaction else None
                if kind in ("credit", "debit"):
                    theirs.append((detail.amount or 0, kind, detail.bank_reference, (detail.text or "").strip() or None))
    mine = []
    for e in entries:
        digits = e["amount"].replace(".", "")
        mine.append((int(digits), e["credit_debit"], None if e["entry_id"].startswith("sha256:") else e["entry_id"], e["remittance_info"]))
    problems = []
    if len(theirs) != len(mine):
        problems.append(f"{len(mine)} entries, bai2 has {len(theirs)}")
    for index, (a, b) in enumerate(zip(mine, theirs)):
        if a != b:
            problems.append(f"entry {index}: ours {a}, bai2 {b}")
    return problems


def local(tag):
    return tag.rsplit("}", 1)[-1]


def check_camt(entries, path):
    root = ET.parse(path).getroot()
    theirs = []
    for element in root.iter():
        if local(element.tag) == "Ntry":
            amount = next(child for child in element if local(child.tag) == "Amt")
            mark = next(child for child in element if local(child.tag) == "CdtDbtInd").text.strip()
            value = decimal.Decimal(amount.text.strip())
            theirs.append(value if mark == "CRDT" else -value)
    mine = [signed(e) for e in entries]
    if mine != theirs:
        return [f"ours {len(mine)} entries sum {sum(mine)}, ElementTree {len(theirs)} entries sum {sum(theirs)}"]
    return []


def main():
    arguments = sys.argv[1:]
    if arguments and arguments[0] == "--skip-balance-check":
        EXTRA.append(arguments.pop(0))
    binary, paths = arguments[0], arguments[1:]
    failures = 0
    tally = {"agree": 0, "differ": 0, "reference fails, we read": 0, "refused, reference reads entries": 0,
             "refused, reference reads none or fails": 0}
    for path in paths:
        entries, error = ours(binary, path)
        with open(path, "rb") as handle:
            head = handle.read(4096).lstrip()
        if entries is None:
            count = reference_count(path, head)
            kind = "refused, reference reads entries" if count else "refused, reference reads none or fails"
            tally[kind] += 1
            print(f"REFUSED  {path}: {error} [reference: {'fails' if count is None else f'{count} entries'}]")
            failures += bool(count)
            continue
        if head.startswith(b"<"):
            problems = check_camt(entries, path)
        elif head.startswith(b"01,"):
            problems = check_bai2(entries, path)
        else:
            problems = check_mt940(entries, path)
        status = "OK      " if not problems else "DIFFERS "
        print(f"{status} {path}: {len(entries)} entries")
        for problem in problems[:10]:
            print("    " + problem)
        if problems and all(p.startswith(("mt-940 failed", "bai2 failed")) for p in problems):
            tally["reference fails, we read"] += 1
        else:
            tally["differ" if problems else "agree"] += 1
            failures += bool(problems)
    print("summary: " + ", ".join(f"{value} {key}" for key, value in tally.items()))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
