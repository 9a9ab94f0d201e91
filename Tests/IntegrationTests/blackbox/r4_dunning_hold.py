"""SPEC section 4 meets section 3: while a bank credit in `exception` lists a customer among its
candidates, that customer's reminders are held; once the AR team resolves the credit, they go.

A customer with an overdue invoice and a registered account; a credit from that account that fits
none of its invoices (exception no_match, the customer its candidate). `dunning tick` sends the
reminders of another customer due the same day but none to this one, and `dunning explain` says
why; after `reconciliation.resolved` (to the customer's credit), the next pass reminds it.
"""
from common import Checks, arclient, capture, cli, customer, invoice, prefix

import bankfiles

checks = Checks()
p = prefix("r4")
cap = capture()
billing, bank, arteam = arclient.Publisher("BILLING"), arclient.Publisher("BANK"), arclient.Publisher("ARTEAM")
held, free = f"{p}-HELD", f"{p}-FREE"
account = bankfiles.iban("DE", "50010517" + str(abs(hash(p)) % 10 ** 10).zfill(10))
for cid in (held, free):
    body = customer(cid)
    if cid == held:
        body["data"]["bank_accounts"] = [account]
    billing.publish(body)
    billing.publish(invoice(f"{cid}-I", cid, "EUR", 80000, "2026-02-01", issue="2026-01-01"))
cap.wait(lambda ms: len([m for m in cap.events("invoice.status_changed") if m.data.get("customer_id", "").startswith(p)]) == 2, timeout=60)
bank.publish(arclient.event("bank.credit.received", {
    "entry_id": f"{p}-E", "account": bankfiles.iban("DE", "37040044" + str(abs(hash(p + "x")) % 10 ** 10).zfill(10)), "currency": "EUR",
    "amount": "123.45", "booking_date": "2026-02-10", "debtor_account": account, "remittance_info": "see attached"}, source="bank-it"))
cap.wait(lambda ms: [m for m in cap.events("reconciliation.exception") if m.data.get("entry_id") == f"{p}-E"], timeout=60)
exception = [m.data for m in cap.events("reconciliation.exception") if m.data.get("entry_id") == f"{p}-E"][0]
checks.equal((exception["reason"], [c.get("customer_id") for c in exception["candidates"]]), ("no_match", [held]), "the credit's exception")


def reminders(cid):
    return [m for m in cap.events() if m.routing_key.startswith(("reminder.", "dunning.")) and m.data.get("customer_id") == cid]


status, output = cli("dunning", "tick", "--now", "2026-03-20T12:00:00Z", "--json", timeout=120)
checks.equal(status, 0, f"dunning tick: {output[-500:]}")
cap.wait(lambda ms: reminders(free), timeout=30)
cap.settle(quiet=1.5, timeout=20)
checks.equal(len(reminders(held)), 0, "reminders to the customer whose credit is an exception")
status, explain = cli("dunning", "explain", held, "--now", "2026-03-20T12:00:00Z")
checks.check(status == 0 and "bank_exception" in explain and f"{p}-E" in explain, f"dunning explain does not say why it waits:\n{explain[-1500:]}")

arteam.publish(arclient.event("reconciliation.resolved", {"entry_id": f"{p}-E", "customer_id": held, "note": "a deposit"}, source="arteam-it"))
cap.wait(lambda ms: [m for m in cap.events("reconciliation.matched") if m.data.get("entry_id") == f"{p}-E"], timeout=60)
status, output = cli("dunning", "tick", "--now", "2026-03-20T13:00:00Z", "--json", timeout=120)
checks.equal(status, 0, f"dunning tick after the resolution: {output[-500:]}")
try:
    cap.wait(lambda ms: reminders(held), timeout=30)
except TimeoutError:
    checks.check(False, "no reminder once the exception was resolved")
checks.finish(prefix=p, held=held, free=free)
