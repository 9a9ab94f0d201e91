"""Reconciliation, end to end through the broker (SPEC section 3), as billing, the gateway, the
bank connector and the AR team would use it:

- billing issues invoices (payment references, registered debtor accounts); the gateway books two
  card payments that one payout will settle;
- the bank sends one credit by bank.credit.received, an intraday camt.054, the night's camt.053
  repeating the camt.054's bookings and the connector's credit (plus new ones and a debit), the
  same camt.053 again, a BAI2 from a US account, an MT940 from a third bank, and a camt.053 that
  does not add up;
- the AR team resolves the exceptions (one twice, one naming two customers' invoices).

Checks every outcome, reason and applied amount against the expectation written here, that no
booking is applied twice, that every event validates against schemas/, and `reconcile explain`.
"""
import base64
import json
import pathlib
import random
import warnings

from common import Checks, arclient, capture, cli, customer, money, prefix

import bankfiles

checks = Checks()
p = prefix("r1")
base = random.randint(100000, 899999)
cap = capture()
billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")
bank, arteam = arclient.Publisher("BANK"), arclient.Publisher("ARTEAM")

OURS_EUR = bankfiles.iban("DE", f"37040044{base:010d}")
OURS_USD = f"77{base}01"
THIRD_BANK = bankfiles.iban("NL", f"ABNA{base:010d}")
IBAN_A = bankfiles.iban("DE", f"50010517{base:010d}")
IBAN_B = bankfiles.iban("FR", f"3000600001{base:011d}47")
IBAN_E = bankfiles.iban("ES", f"21000418{base:012d}")
A, B, C, D, E = (f"{p}-{x}" for x in "ABCDE")


def number(n):
    return f"INV-{base}-{n:02d}"


def event(type_, data, role, subject=None, **extra):
    return arclient.event(type_, data, source=f"{role}-it", subject=subject, **extra)


def upsert(cid, accounts=(), policy=None):
    data = {"customer_id": cid, "name": f"Customer {cid}"}
    if accounts:
        data["bank_accounts"] = list(accounts)
    if policy:
        data["dunning_policy"] = policy
    billing.publish(event("customer.upserted", data, "billing", cid))


def issue(iid, cid, n, currency, minor, reference=None):
    data = {"invoice_id": iid, "customer_id": cid, "number": number(n), "currency": currency, "amount": money(minor, currency),
            "issue_date": "2026-02-01", "due_date": f"2026-03-{n:02d}"}
    if reference:
        data["payment_reference"] = reference
    billing.publish(event("invoice.issued", data, "billing", cid))


def card(pid, cid, iid, minor, payout):
    gateway.publish(event("payment.succeeded", {
        "payment_id": pid, "customer_id": cid, "currency": "EUR", "amount": money(minor, "EUR"), "method": "card",
        "received_at": "2026-03-13T10:00:00Z", "allocations": [{"invoice_id": iid, "amount": money(minor, "EUR")}], "payout_id": payout,
    }, "gateway", cid))


statements = []


def statement(fmt, file):
    # The id carries the run's prefix: the file itself is base64 in the body.
    statements.append(fmt)
    bank.publish(arclient.event("bank.statement.received", None, source="bank-it", id_=f"{p}-S{len(statements)}", format=fmt,
                                data_base64=base64.b64encode(file).decode()))


def resolve(data):
    arteam.publish(event("reconciliation.resolved", data, "arteam"))


def mine_events(type_):
    return [m.data for m in cap.events(type_) if str(m.data.get("entry_id", "")).startswith(p)]


def by_entry(type_):
    found = {}
    for data in mine_events(type_):
        found.setdefault(data["entry_id"], []).append(data)
    return found


# ---- master data, invoices, card payments in one payout -----------------------------------
upsert(A, [IBAN_A.lower()])   # registered in lower case: the bank writes it upper case, still A's
upsert(B, [IBAN_B])
upsert(C, policy="it-oldest-first")
upsert(D)
upsert(E, [IBAN_E])
ref_a1 = bankfiles.creditor_reference(f"{base}A1")
invoices = {  # id: (customer, number, currency, amount)
    f"{p}-A1": (A, 1, "EUR", 120000), f"{p}-A2": (A, 2, "EUR", 35000), f"{p}-A3": (A, 3, "EUR", 100000),
    f"{p}-A4": (A, 4, "EUR", 8000), f"{p}-B1": (B, 11, "EUR", 50000), f"{p}-B2": (B, 12, "EUR", 50000),
    f"{p}-B3": (B, 13, "EUR", 9000), f"{p}-C1": (C, 5, "EUR", 10000), f"{p}-D1": (D, 6, "USD", 250000),
    f"{p}-D2": (D, 8, "USD", 30000), f"{p}-E1": (E, 7, "EUR", 64000),
}
for iid, (cid, n, currency, minor) in invoices.items():
    issue(iid, cid, n, currency, minor, reference=ref_a1 if iid.endswith("-A1") else None)
payout = f"po_{base}{p[-4:]}"
card(f"{p}-P1", A, f"{p}-A4", 8000, payout)
card(f"{p}-P2", B, f"{p}-B3", 9000, payout)
cap.wait(lambda ms: len([m for m in cap.events("payment.confirmed") if m.data.get("payment_id", "").startswith(p)]) == 2, timeout=60)

# ---- the bank's day ----------------------------------------------------------------------
# 1. a connector credit: the ISO 11649 reference of A1
bank.publish(event("bank.credit.received", {
    "entry_id": f"{p}-CONN-1", "bank_reference": f"{p}-R1", "account": OURS_EUR, "currency": "EUR", "amount": "1200.00",
    "booking_date": "2026-03-14", "debtor_name": "A GmbH", "remittance_info": f"Rechnung {ref_a1[:4]} {ref_a1[4:8]} {ref_a1[8:]}",
}, "bank"))
r2 = {"ref": f"{p}-R2", "amount": 35000, "text": f"Rg.Nr. inv {base} 2 / danke", "debtor_name": "A GmbH"}
r3 = {"ref": f"{p}-R3", "amount": 16680, "text": f"STRIPE PAYOUT {payout.upper()}", "debtor_name": "Stripe Payments Europe"}
r4 = {"ref": f"{p}-R4", "amount": 50000, "text": "payment", "debtor_name": "B SARL", "debtor_account": IBAN_B}
intraday = [r2, r3, r4, {"ref": f"{p}-PDNG", "amount": 999, "status": "PDNG", "text": "pending: not money yet"}]
statement("camt.054", bankfiles.camt("054", OURS_EUR, "EUR", intraday, f"{p}-NTF"))
# 2. the night's statement repeats the camt.054 and the connector's booking, and adds more
r1 = {"ref": f"{p}-R1", "amount": 120000, "text": "Rechnung " + ref_a1, "debtor_name": "A GmbH"}
r5 = {"ref": f"{p}-R5", "amount": 99800, "text": f"{number(3)} abzgl. Spesen", "debtor_name": "A GmbH", "debtor_account": IBAN_A}
r6 = {"ref": f"{p}-R6", "amount": 7777, "text": "Spende Sommerfest", "debtor_name": "Unbekannt"}
r7 = {"ref": f"{p}-R7", "amount": 13000, "text": f"INV {base} 05 incl. tip"}
fee = {"ref": f"{p}-FEE", "amount": 1250, "credit": False, "text": "Kontofuehrung"}
night = bankfiles.camt("053", OURS_EUR, "EUR", [r1, r2, r3, r4, r5, r6, r7, fee], f"{p}-STMT", opening=5000000)
statement("camt.053", night)
statement("camt.053", night)   # re-sent, new event id: nothing happens twice
# 3. a US account's BAI2 and a third bank's MT940
statement("bai2", bankfiles.bai2(OURS_USD, "USD", [{"ref": f"{p}-R9", "amount": 250000, "text": f"INVOICE {number(6)} WIRE"}], opening=100000))
r10 = {"ref": f"{p}-R10", "amount": 30000, "text": f"{number(8)}"}                        # D2 is in USD
r11 = {"ref": f"{p}-R11", "amount": 64000, "text": f"{number(2)}", "debtor_name": "E SL", "debtor_account": IBAN_E}  # A's number, E's account
statement("mt940", bankfiles.mt940(THIRD_BANK, "EUR", [r10, r11], f"{p}-940"))
# 4. a camt.053 that does not add up: refused whole, with the parser's position
closing = b'<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1.00'
broken = bankfiles.camt("053", OURS_EUR, "EUR", [{"ref": f"{p}-BAD", "amount": 100}], f"{p}-BAD")
checks.check(closing in broken, "the broken statement's closing balance was not where expected")
broken = broken.replace(closing, closing[:-1] + b"1")
statement("camt.053", broken)

expected = {  # entry id: (state, rule or reason)
    f"{p}-CONN-1": ("matched", "structured_reference"), f"{p}-R2": ("matched", "invoice_number"), f"{p}-R3": ("matched", "gateway_payout"),
    f"{p}-R4": ("exception", "ambiguous"), f"{p}-R5": ("matched", "invoice_number"), f"{p}-R6": ("exception", "no_match"),
    f"{p}-R7": ("partially_matched", "invoice_number"), f"{p}-R9": ("matched", "invoice_number"), f"{p}-R10": ("exception", "currency_mismatch"),
    f"{p}-R11": ("exception", "ambiguous"),
}


def settled(ms):
    seen = set(by_entry("reconciliation.matched")) | set(by_entry("reconciliation.exception"))
    bad = [m for m in cap.dead_letters() if p.encode() in m.body and m.reason == "bank_file_invalid"]
    return set(expected) <= seen and bad


try:
    cap.wait(settled, timeout=90)
except TimeoutError as error:
    checks.check(False, f"not every credit was decided: {error}; got {sorted(set(by_entry('reconciliation.matched')) | set(by_entry('reconciliation.exception')))}")
cap.settle(quiet=2.0, timeout=30)

matched, exceptions = by_entry("reconciliation.matched"), by_entry("reconciliation.exception")
for entry, (state, what) in expected.items():
    got = matched.get(entry, []) + exceptions.get(entry, [])
    if not checks.equal(len(got), 1, f"decisions published for {entry}"):
        continue
    decision = got[0]
    checks.equal((decision.get("state", "exception"), decision.get("rule") or decision.get("reason")), (state, what), f"outcome of {entry}")
# The amounts, against what was written above.
alloc = {e: [(a["invoice_id"], a["amount"], a.get("written_off")) for a in d[0]["allocations"]] for e, d in matched.items()}
checks.equal(alloc.get(f"{p}-CONN-1"), [(f"{p}-A1", "1200.00", None)], "A1 paid by its ISO 11649 reference")
checks.equal(alloc.get(f"{p}-R2"), [(f"{p}-A2", "350.00", None)], "A2 paid from messy text")
checks.equal(alloc.get(f"{p}-R5"), [(f"{p}-A3", "998.00", "2.00")], "A3 paid with bank charges written off")
checks.equal(alloc.get(f"{p}-R7"), [(f"{p}-C1", "100.00", None)], "C1 paid, the rest credit")
checks.equal(matched.get(f"{p}-R7", [{}])[0].get("unapplied_amount"), "30.00", "C's over-payment kept as credit")
checks.equal(alloc.get(f"{p}-R9"), [(f"{p}-D1", "2500.00", None)], "D1 paid from the BAI2")
payout_event = matched.get(f"{p}-R3", [{}])[0]
checks.equal((payout_event.get("payout_id"), payout_event.get("fees"), payout_event.get("customer_id")), (payout, "3.20", None), "the payout settled with fees")
ambiguous = exceptions.get(f"{p}-R4", [{}])[0]
checks.equal(sorted(i for c in ambiguous.get("candidates", []) for i in c.get("invoice_ids", [])), [f"{p}-B1", f"{p}-B2"], "R4 candidates")
conflict = exceptions.get(f"{p}-R11", [{}])[0]
checks.equal(sorted({c.get("customer_id") for c in conflict.get("candidates", [])}), sorted([A, E]), "R11: A's invoice vs E's account")
checks.equal(len(mine_events("reconciliation.exception")), 4, "exactly four exceptions")
# Money applied from bank credits is confirmed to the customer, once per credit.
confirmations = by_entry("payment.confirmed")
checks.equal(sorted(confirmations), sorted([f"{p}-CONN-1", f"{p}-R2", f"{p}-R5", f"{p}-R7", f"{p}-R9"]), "payment.confirmed for bank credits")
checks.check(all(len(v) == 1 for v in confirmations.values()), f"a credit confirmed twice: {confirmations}")
dead = [m for m in cap.dead_letters() if p.encode() in m.body]
checks.equal([m.reason for m in dead], ["bank_file_invalid"], "dead letters of the day")
if dead:
    detail = dead[0].headers.get("x-rejection-detail", b"")
    detail = detail.decode() if isinstance(detail, bytes) else detail
    checks.check("closing balance" in detail and "/Document" in detail, f"the parser's positioned message: {detail}")

# ---- the AR team ---------------------------------------------------------------------------
resolve({"entry_id": f"{p}-R4", "currency": "EUR", "allocations": [{"invoice_id": f"{p}-B1", "amount": "500.00"}], "note": "B confirmed by phone"})
resolve({"entry_id": f"{p}-R6", "customer_id": C})
resolve({"entry_id": f"{p}-R10", "ignore": True, "note": "returned to sender"})
resolve({"entry_id": f"{p}-R11", "currency": "EUR", "allocations": [{"invoice_id": f"{p}-E1", "amount": "320.00"}, {"invoice_id": f"{p}-B2", "amount": "320.00"}]})
cap.wait(lambda ms: len(by_entry("reconciliation.matched")) >= 8 and [m for m in cap.dead_letters() if p.encode() in m.body and m.reason == "foreign_reference"],
         timeout=60)
resolve({"entry_id": f"{p}-R4", "customer_id": B})   # again: refused, it is settled
cap.wait(lambda ms: [m for m in cap.dead_letters() if p.encode() in m.body and m.reason == "entry_already_settled"], timeout=60)
cap.settle(quiet=1.5, timeout=30)
matched = by_entry("reconciliation.matched")
checks.equal([(a["invoice_id"], a["amount"]) for a in matched.get(f"{p}-R4", [{}])[-1].get("allocations", [])], [(f"{p}-B1", "500.00")], "R4 resolved to B1")
checks.equal((matched.get(f"{p}-R4", [{}])[-1].get("rule"), matched.get(f"{p}-R6", [{}])[-1].get("state")), ("manual", "partially_matched"), "manual resolutions")
checks.equal(sorted(m.reason for m in cap.dead_letters() if p.encode() in m.body),
             ["bank_file_invalid", "entry_already_settled", "foreign_reference"], "refused resolutions")

status, explain = cli("reconcile", "explain", f"{p}-R4")
checks.equal(status, 0, f"reconcile explain exit status: {explain}")
for needle in ("decision 1 (automatic", "decision 2 (manual", "lost", f"{p}-B1", f"{p}-B2", "rule 4", "equally good"):
    checks.check(needle in explain, f"explain R4 lacks {needle!r}:\n{explain}")
status, explain_none = cli("reconcile", "explain", f"{p}-NOPE")
checks.check(status != 0 and "no bank entry" in explain_none, f"explain of an unknown entry: {status} {explain_none}")

# ---- every event we caused validates against its schema ------------------------------------
warnings.filterwarnings("ignore", category=DeprecationWarning)
import jsonschema  # noqa: E402
from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402

schemas = pathlib.Path(arclient.__file__).resolve().parent.parent / "schemas"
store = {path.as_uri(): json.loads(path.read_text()) for path in schemas.glob("*.json")}
invalid = []
for m in cap.events():
    if p.encode() not in m.body:
        continue
    path = schemas / f"{m.routing_key}.json"
    schema = store[path.as_uri()]
    validator = Draft202012Validator(schema, resolver=jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store),
                                     format_checker=FormatChecker())
    invalid += [f"{m.routing_key}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(m.json)]
checks.equal(invalid[:5], [], "events that do not validate against schemas/")
kinds = sorted({m.data["kind"] for m in cap.events("ledger.entry_posted") if p.encode() in m.body})
for kind in ("bank_credit_received", "payout_settled", "shortfall_written_off"):
    checks.check(kind in kinds, f"no ledger.entry_posted of kind {kind} ({kinds})")

final = {  # invoice: (balance minor, status)
    f"{p}-A1": (0, "paid"), f"{p}-A2": (0, "paid"), f"{p}-A3": (0, "paid"), f"{p}-A4": (0, "paid"), f"{p}-B1": (0, "paid"),
    f"{p}-B2": (50000, "open"), f"{p}-B3": (0, "paid"), f"{p}-C1": (0, "paid"), f"{p}-D1": (0, "paid"), f"{p}-D2": (30000, "open"),
    f"{p}-E1": (64000, "open"),
}
checks.finish(prefix=p, payout=payout, customer_c=C, customer_b=B, customer_e=E, customer_a=A,
              accounts=[OURS_EUR, OURS_USD, THIRD_BANK],
              invoices=[{"invoice_id": i, "balance_minor": b, "status": s} for i, (b, s) in final.items()],
              entries=[{"entry_id": e, "state": s} for e, s in {
                  f"{p}-CONN-1": "matched", f"{p}-R2": "matched", f"{p}-R3": "matched", f"{p}-R4": "matched", f"{p}-R5": "matched",
                  f"{p}-R6": "partially_matched", f"{p}-R7": "partially_matched", f"{p}-R9": "matched", f"{p}-R10": "ignored",
                  f"{p}-R11": "exception", f"{p}-FEE": "recorded"}.items()],
              credit_c_minor=3000 + 7777)
