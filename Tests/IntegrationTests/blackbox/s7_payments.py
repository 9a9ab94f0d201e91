"""Scenario 7: SPEC "Money rules" for payments, refunds and chargebacks, checked against the
independent model in common.Books (payment.confirmed fields included)."""
import random

from common import Books, Checks, arclient, capture, customer, invoice, money, payment, prefix, refund, status_events

checks = Checks()
p = prefix("it7")
cid = f"{p}-C"
cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
model = Books("USD")

billing.publish(customer(cid))
# Four invoices; due dates not in issue order, so oldest-due-first is not arrival order.
dues = {"A": "2026-02-01", "B": "2026-03-01", "C": "2026-05-01", "D": "2026-04-01"}
amounts = {k: random.randint(10000, 99999) for k in dues}
ids = {k: f"{p}-{k}" for k in dues}
for k in ("C", "A", "D", "B"):
    billing.publish(invoice(ids[k], cid, "USD", amounts[k], dues[k]))
    model.issue(ids[k], amounts[k], dues[k])
cap.wait(lambda ms: all(status_events(cap, i) for i in ids.values()), timeout=30)


def confirmed(pid):
    cap.wait(lambda ms: any(m.data.get("payment_id") == pid for m in cap.events("payment.confirmed")), timeout=30)
    return [m.data for m in cap.events("payment.confirmed") if m.data.get("payment_id") == pid][0]


def check_confirmed(pid, amount, expected_allocations, unapplied):
    data = confirmed(pid)
    checks.equal(data.get("amount"), money(amount, "USD"), f"{pid} amount")
    checks.equal([(a["invoice_id"], a["amount"], a["invoice_balance"]) for a in data.get("allocations", [])],
                 [(i, money(a, "USD"), money(b, "USD")) for i, a, b in expected_allocations], f"{pid} allocations")
    checks.equal(data.get("unapplied_amount"), money(unapplied, "USD"), f"{pid} unapplied_amount")
    checks.equal(data.get("customer_balance"), money(model.balance(), "USD"), f"{pid} customer_balance (open invoices only)")
    if "credit_balance" in data:
        checks.equal(data.get("credit_balance"), money(model.credit_balance(), "USD"), f"{pid} credit_balance")


# P1: explicit part of C, the rest oldest-due-first (A, then part of B).
c_part = random.randint(1, amounts["C"] - 1)
b_part = random.randint(1, amounts["B"] - 1)
p1 = c_part + amounts["A"] + b_part
gateway.publish(payment(f"{p}-P1", cid, "USD", p1, allocations=[(ids["C"], c_part)]))
alloc, rest = model.receive(f"{p}-P1", p1, [(ids["C"], c_part)])
check_confirmed(f"{p}-P1", p1, alloc, rest)

# P2: over-payment: everything open, plus extra → credit.
extra = random.randint(1, 99999)
p2 = model.balance() + extra
gateway.publish(payment(f"{p}-P2", cid, "USD", p2))
alloc, rest = model.receive(f"{p}-P2", p2)
checks.equal(rest, extra, "model: P2 remainder")
check_confirmed(f"{p}-P2", p2, alloc, rest)

# Refund of the over-payment: taken from P2's unapplied credit, every invoice stays paid.
gateway.publish(refund(f"{p}-P2", f"{p}-R2", "USD", extra))
model.take_back(f"{p}-P2", extra)
cap.wait(lambda ms: any(m.data.get("customer_id") == cid and m.data.get("balance") == money(0, "USD")
                        for m in cap.events("credit_balance.changed")), timeout=30)

# Chargeback of part of P1: newest application first → B's part, then some of A; C untouched.
a_back = random.randint(1, amounts["A"] - 1)
chargeback = b_part + a_back
gateway.publish(arclient.event("payment.reversed", {"payment_id": f"{p}-P1", "amount": money(chargeback, "USD"), "reason": "chargeback"},
                               source="gateway-it", id_=f"{p}-CB"))
model.take_back(f"{p}-P1", chargeback)
cap.wait(lambda ms: any(e["to"] == "partially_paid" and e["from"] == "paid" for e in status_events(cap, ids["A"])), timeout=30)
cap.settle(quiet=1.5, timeout=15)

for k, iid in ids.items():
    last = status_events(cap, iid)[-1]
    checks.equal((last["to"], last["balance"]), (model.status(iid), money(model.invoices[iid]["balance"], "USD")), f"{k} final status/balance")
checks.equal([e["to"] for e in status_events(cap, ids["C"])], ["open", "partially_paid", "paid"], "C never reopened")
checks.equal([e["to"] for e in status_events(cap, ids["D"])], ["open", "paid"], "D stays paid after the refund")

portal = arclient.Portal()
import common  # noqa: E402
reply = portal.request("account.summary.requested", {"customer_id": cid}, expect_source=common.SOURCE)
usd = [b for b in reply["data"].get("balances", []) if b["currency"] == "USD"]
checks.equal((usd[0]["balance"], usd[0]["unapplied_credit"]) if usd else None,
             (money(model.balance(), "USD"), money(model.credit_balance(), "USD")), "summary USD balance/credit")

checks.finish(prefix=p, customer_id=cid, balance_minor=model.balance(), credit_minor=model.credit_balance(),
              invoices=[{"invoice_id": i, "balance_minor": model.invoices[i]["balance"], "status": model.status(i), "amount_minor": amounts[k]}
                        for k, i in ids.items()])
