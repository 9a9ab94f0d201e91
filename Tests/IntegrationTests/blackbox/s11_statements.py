"""Scenario 11: statements, payment history, isolation and error replies, as the portal sees them.

One customer's book is played through the broker (invoices in USD and JPY, payments with
explicit and spread allocations, an over-payment, a refund, a chargeback, a credit note, an
adjustment, a void and a write-off). An independent model (common.Books plus the statement rules
of docs/portal.md) predicts every statement figure; the reply must match it, agree with the
account summary (closing = balance − unapplied credit), and validate against its schema.
Then: as_known_at reproduces an earlier reply exactly after more postings; every error code comes
back as an error reply with the request's correlation id; another customer's ids (customer,
invoice, cursor) never yield data.
"""
import datetime
import json
import os
import random
import sys

from common import Books, Checks, arclient, capture, customer, invoice, money, payment, prefix, refund, SOURCE, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import validate_examples  # noqa: E402

checks = Checks()
p = prefix("it11")
A, B = f"{p}-A", f"{p}-B"
today = datetime.datetime.now(datetime.timezone.utc).date()
SCHEMAS = validate_examples.load_schemas()


def valid(reply, what):
    validator = validate_examples.validator_for(reply.get("type", "?"), SCHEMAS)
    if not checks.check(validator is not None, f"{what}: no schema for {reply.get('type')}"):
        return
    errors = list(validator.iter_errors(reply))
    checks.check(not errors, f"{what}: reply does not validate: {[e.message[:160] for e in errors[:3]]}")


def minor(text, currency):
    digits = {"USD": 2, "JPY": 0, "EUR": 2}[currency]
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    value = int(whole) * 10 ** digits + (int(fraction) if digits else 0)
    return -value if negative else value


cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
portal = arclient.Portal()


def request(type_, data):
    reply = portal.request(type_, data, expect_source=SOURCE)
    props = portal.last_reply_properties
    valid(reply, f"{type_} {json.dumps(data)[:80]}")
    return reply, props


def confirmed(pid):
    return any(m.data.get("payment_id") == pid for m in cap.events("payment.confirmed"))


def wait_ledger(count, customer_id):
    cap.wait(lambda ms: sum(1 for m in cap.events("ledger.entry_posted") if m.data.get("customer_id") == customer_id) >= count, timeout=60)


# --- the book of A (and a little of B) ----------------------------------------------------------
billing.publish(customer(A, name=f"A & Sons <b>{p}</b>"))
billing.publish(customer(B, name=f"B <script>alert(1)</script> {p}"))
usd = Books("USD")
inv = {f"{p}-U{i}": random.randint(1000, 90000) for i in range(1, 6)}
dues = {iid: (today - datetime.timedelta(days=d)).isoformat() for iid, d in zip(inv, [100, 70, 40, 10, -20])}
for iid, amount in inv.items():
    billing.publish(invoice(iid, A, "USD", amount, dues[iid]))
    usd.issue(iid, amount, dues[iid])
jpy_invoice, jpy_amount = f"{p}-J1", random.randint(1000, 900000)
billing.publish(invoice(jpy_invoice, A, "JPY", jpy_amount, (today - datetime.timedelta(days=5)).isoformat()))
billing.publish(invoice(f"{p}-BI", B, "USD", 5000, today.isoformat()))
wait_ledger(6, A)

ids = list(inv)
p1 = inv[ids[0]] // 2
gateway.publish(payment(f"{p}-P1", A, "USD", p1, allocations=[(ids[0], p1)]))
usd.receive(f"{p}-P1", p1, [(ids[0], p1)])
over = sum(inv.values())  # pays everything open oldest first, the rest becomes credit
gateway.publish(payment(f"{p}-P2", A, "USD", over))
usd.receive(f"{p}-P2", over)
cap.wait(lambda ms: confirmed(f"{p}-P1") and confirmed(f"{p}-P2"), timeout=60)
gateway.publish(refund(f"{p}-P2", f"{p}-R1", "USD", 700))
usd.take_back(f"{p}-P2", 700)
gateway.publish(arclient.event("payment.reversed", {"payment_id": f"{p}-P1", "amount": money(p1, "USD"), "reason": "chargeback"},
                               source="gateway-it"))
usd.take_back(f"{p}-P1", p1)
billing.publish(arclient.event("credit_note.issued", {"credit_note_id": f"{p}-CN", "customer_id": A, "currency": "USD",
                                                     "amount": money(1500, "USD")}, source="billing-it", subject=A))
usd.credit.append([f"{p}-CN", 1500])
gateway.publish(payment(f"{p}-PB", B, "USD", 1000))
wait_ledger(6 + 5, A)
cap.wait(lambda ms: confirmed(f"{p}-PB"), timeout=60)

# --- statement of today vs the model and the summary ----------------------------------------------
reply, props = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": today.isoformat()})
data = reply.get("data", {})
checks.equal(props.correlation_id is not None, True, "statement reply correlation id")
statements = {s["currency"]: s for s in data.get("statements", [])}
checks.equal(sorted(statements), ["JPY", "USD"], "statement currencies")
s = statements.get("USD", {})
receivable, credit = usd.balance(), usd.credit_balance()
checks.equal(s.get("opening_balance"), money(0, "USD"), "USD opening (everything was booked today)")
checks.equal(s.get("closing_receivable"), money(receivable, "USD"), "USD closing receivable = model open balances")
checks.equal(s.get("unapplied_credit"), money(credit, "USD"), "USD unapplied credit = model")
checks.equal(s.get("closing_balance"), money(receivable - credit, "USD"), "USD closing = receivable − credit")
# Refunds and chargebacks raise what the customer owes (charges); payments and credit notes lower it.
charges = sum(inv.values()) + 700 + p1
credits = p1 + over + 1500
checks.equal((s.get("charges"), s.get("credits")), (money(charges, "USD"), money(credits, "USD")), "USD charges and credits")
running = 0
for m in s.get("movements", []):
    running += minor(m["amount"], "USD")
    checks.equal(m["running_balance"], money(running, "USD"), f"running balance after {m['kind']} {m['reference']}")
kinds = sorted(m["kind"] for m in s.get("movements", []))
checks.equal(kinds, sorted(["invoice"] * 5 + ["payment", "payment", "refund", "reversal", "credit_note"]), "USD movement kinds")
known_refs = set(inv) | {f"{p}-P1", f"{p}-P2", f"{p}-R1", f"{p}-CN"}
checks.check(all(m["reference"] in known_refs or m["kind"] == "reversal" for m in s.get("movements", [])), "movements name only A's documents")
checks.check(f"{p}-BI" not in json.dumps(data) and f"{p}-PB" not in json.dumps(data), "B's documents are not on A's statement")
aging = s.get("aging", {})
expected_aging = {"current": 0, "days_1_30": 0, "days_31_60": 0, "days_61_90": 0, "days_over_90": 0}
for iid, v in usd.invoices.items():
    days = (today - datetime.date.fromisoformat(v["due"])).days
    key = "current" if days <= 0 else "days_1_30" if days <= 30 else "days_31_60" if days <= 60 else "days_61_90" if days <= 90 else "days_over_90"
    expected_aging[key] += v["balance"]
checks.equal(aging, {k: money(v, "USD") for k, v in expected_aging.items()}, "USD aging at today")
checks.equal(statements.get("JPY", {}).get("closing_balance"), money(jpy_amount, "JPY"), "JPY closing")
checks.equal(statements.get("JPY", {}).get("aging", {}).get("days_1_30"), money(jpy_amount, "JPY"), "JPY 5 days past due")

summary, _ = request("account.summary.requested", {"customer_id": A})
for b in summary.get("data", {}).get("balances", []):
    st = statements.get(b["currency"], {})
    checks.equal(minor(st.get("closing_balance", "0"), b["currency"]),
                 minor(b["balance"], b["currency"]) - minor(b["unapplied_credit"], b["currency"]),
                 f"{b['currency']} statement closing = summary balance − unapplied credit")

# --- as_known_at: later postings do not change what was shown -------------------------------------
first_known = data.get("as_known_at")
billing.publish(arclient.event("invoice.adjusted", {"invoice_id": jpy_invoice, "amount": money(jpy_amount + 100, "JPY"), "reason": "fee"},
                               source="billing-it"))
# In EUR, where A has no credit that would pay them at once.
billing.publish(invoice(f"{p}-U9", A, "EUR", 4200, today.isoformat()))
billing.publish(arclient.event("invoice.voided", {"invoice_id": f"{p}-U9", "reason": "duplicate"}, source="billing-it"))
billing.publish(invoice(f"{p}-U10", A, "EUR", 3300, today.isoformat()))
billing.publish(arclient.event("invoice.written_off", {"invoice_id": f"{p}-U10", "reason": "bankrupt"}, source="billing-it"))
wait_ledger(6 + 5 + 5, A)
again, _ = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": today.isoformat(), "as_known_at": first_known})
checks.equal(again.get("data", {}).get("statements"), data.get("statements"), "as_known_at reproduces the earlier reply exactly")
checks.equal(again.get("data", {}).get("as_known_at"), first_known, "as_known_at echoed")
later, _ = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": today.isoformat()})
later_by_currency = {x["currency"]: x for x in later.get("data", {}).get("statements", [])}
later_usd, later_eur = later_by_currency.get("USD", {}), later_by_currency.get("EUR", {})
checks.equal(later_usd, s, "USD unchanged by the later postings in other currencies")
checks.equal([(m["kind"], m["amount"]) for m in later_eur.get("movements", [])],
             [("invoice", "42.00"), ("void", "-42.00"), ("invoice", "33.00"), ("write_off", "-33.00")], "EUR: void and write-off")
checks.equal((later_eur.get("charges"), later_eur.get("credits"), later_eur.get("closing_balance")), ("75.00", "75.00", "0.00"),
             "EUR: an invoice voided and one written off leave nothing")
jpy_later = {x["currency"]: x for x in later.get("data", {}).get("statements", [])}.get("JPY", {})
checks.equal(jpy_later.get("closing_balance"), money(jpy_amount + 100, "JPY"), "JPY after the adjustment")

# --- documents on request ------------------------------------------------------------------------
html, _ = request("statement.requested", {"customer_id": B, "from": today.isoformat(), "to": today.isoformat(), "format": "html"})
content = html.get("data", {}).get("document", {}).get("content", "")
checks.check("<script>alert(1)</script>" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content,
             "the customer name is escaped in the HTML statement")
csv_reply, _ = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": today.isoformat(), "format": "csv"})
csv_text = csv_reply.get("data", {}).get("document", {}).get("content", "")
checks.check(f"closing,{today.isoformat()},,,,,,{later_usd.get('closing_balance')}" in csv_text, "CSV closing row")

# --- errors and isolation -----------------------------------------------------------------------
def error_code(reply):
    return (reply.get("data", {}).get("error") or {}).get("code")

r, _ = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": (today - datetime.timedelta(days=1)).isoformat()})
checks.equal(error_code(r), "bad_range", "to before from")
r, _ = request("statement.requested", {"customer_id": A, "from": "2000-01-01", "to": "2030-01-01"})
checks.equal(error_code(r), "bad_range", "a period too long")
r, _ = request("statement.requested", {"customer_id": f"{p}-nobody", "from": today.isoformat(), "to": today.isoformat()})
checks.equal(error_code(r), "unknown_customer", "statement of an unknown customer")
r, _ = request("statement.requested", {"customer_id": A, "from": today.isoformat(), "to": today.isoformat(), "as_known_at": "2099-01-01T00:00:00Z"})
checks.equal(error_code(r), "bad_as_known_at", "as_known_at in the future")
r, _ = request("payment_history.requested", {"customer_id": f"{p}-nobody"})
checks.equal(error_code(r), "unknown_customer", "history of an unknown customer")
r, _ = request("payment_history.requested", {"customer_id": A, "cursor": "v1.forged.cursor"})
checks.equal(error_code(r), "bad_cursor", "a forged cursor")
r, _ = request("payment_history.requested", {"customer_id": A, "invoice_id": f"{p}-BI"})
checks.equal(error_code(r), "unknown_invoice", "A asking for payments of B's invoice")
checks.check(f"{p}-PB" not in json.dumps(r), "no trace of B's payment")
r, _ = request("payment_history.requested", {"customer_id": A, "from": today.isoformat(), "to": (today - datetime.timedelta(days=3)).isoformat()})
checks.equal(error_code(r), "bad_range", "history to before from")
r, _ = request("payment_history.requested", {"customer_id": A, "limit": 0})
checks.equal(error_code(r), "schema_violation", "an invalid request is answered with its rejection code")
# B's cursor presented for A: refused; for B it works.
page_b, _ = request("payment_history.requested", {"customer_id": B, "limit": 1})
gateway.publish(payment(f"{p}-PB2", B, "USD", 300))
cap.wait(lambda ms: confirmed(f"{p}-PB2"), timeout=60)
page_b, _ = request("payment_history.requested", {"customer_id": B, "limit": 1})
cursor_b = page_b.get("data", {}).get("next_cursor")
if checks.check(cursor_b is not None, "B has a second page"):
    r, _ = request("payment_history.requested", {"customer_id": A, "cursor": cursor_b})
    checks.equal(error_code(r), "bad_cursor", "B's cursor presented by A")
    checks.check(f"{p}-PB" not in json.dumps(r), "no trace of B's payments in the refusal")
    r, _ = request("payment_history.requested", {"customer_id": B, "cursor": cursor_b, "from": "2020-01-01"})
    checks.equal(error_code(r), "bad_cursor", "a cursor with other filters")
    r, _ = request("payment_history.requested", {"customer_id": B, "cursor": cursor_b})
    checks.equal([x["payment_id"] for x in r.get("data", {}).get("payments", [])], [f"{p}-PB"], "B's second page")
summary_b, _ = request("account.summary.requested", {"customer_id": B})
checks.check(p + "-U" not in json.dumps(summary_b) and A not in json.dumps(summary_b), "B's summary names nothing of A")
statement_b, _ = request("statement.requested", {"customer_id": B, "from": today.isoformat(), "to": today.isoformat()})
checks.check(A not in json.dumps(statement_b) and f"{p}-U" not in json.dumps(statement_b), "B's statement names nothing of A")

# --- history of A: allocations, refunds, chargeback ---------------------------------------------
history, _ = request("payment_history.requested", {"customer_id": A})
payments = {x["payment_id"]: x for x in history.get("data", {}).get("payments", [])}
checks.equal(sorted(payments), sorted([f"{p}-P1", f"{p}-P2"]), "A's payments")
p2 = payments.get(f"{p}-P2", {})
checks.equal([(r_["refund_id"], r_["kind"], r_["amount"]) for r_ in p2.get("refunds", [])], [(f"{p}-R1", "refund", money(700, "USD"))], "P2 refund")
p1_item = payments.get(f"{p}-P1", {})
checks.equal([(r_["kind"], r_["amount"]) for r_ in p1_item.get("refunds", [])], [("reversal", money(p1, "USD"))], "P1 chargeback")
applied = {}
for seq, pid, iid, amount, unwound in usd.applications:
    if pid == f"{p}-P2":
        applied[iid] = applied.get(iid, 0) + amount
checks.equal({a["invoice_id"]: a["amount"] for a in p2.get("allocations", [])}, {i: money(v, "USD") for i, v in applied.items()},
             "P2 allocations as the model spread them")

checks.finish(prefix=p, customer_a=A, customer_b=B)
