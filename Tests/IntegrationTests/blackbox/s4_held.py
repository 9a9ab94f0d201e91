"""Scenario 4: held messages (SPEC section 7, "Order-tolerant")."""
import os
import random
import time

from common import (Checks, arclient, capture, customer, held_ids, invoice, money, payment, prefix, refund, status_events,
                    wait_until)

checks = Checks()
hold = int(os.environ.get("IT_HOLD_SECONDS", "6"))
p = prefix("it4")
cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
results = {}

# (a) invoice before its customer: held, listed, applied the moment the customer arrives.
c1, i1 = f"{p}-C1", f"{p}-I1"
a1 = random.randint(1000, 99999)
billing.publish(invoice(i1, c1, "USD", a1, "2026-06-01", id_=f"{p}-E-I1"))
# (b) invoice for a customer that never arrives: dead-lettered unknown_reference after the hold time.
never = invoice(f"{p}-I-NEVER", f"{p}-C-NEVER", "USD", 777, "2026-06-01", id_=f"{p}-E-NEVER")
billing.publish(never)
listed = wait_until(lambda: f"{p}-E-I1" in held_ids() and f"{p}-E-NEVER" in held_ids(), timeout=hold - 1, step=0.2)
checks.check(listed, "held list does not show both waiting invoices")
checks.equal(status_events(cap, i1), [], "events of the held invoice before its customer")
billing.publish(customer(c1))
cap.wait(lambda ms: status_events(cap, i1), timeout=10)
ev = status_events(cap, i1)[0]
checks.equal((ev["to"], ev["balance"]), ("open", money(a1, "USD")), "released invoice status_changed")
checks.check(f"{p}-E-I1" not in held_ids(), "the released invoice is still listed as held")

# (c) payments before their invoice: explicit allocation held for I3 (not spent on I4), plain credit applied to I4.
c2 = f"{p}-C2"
i3, i4 = f"{p}-I3", f"{p}-I4"
a3, a4 = random.randint(5000, 99999), random.randint(5000, 99999)
pay_explicit = random.randint(1, a3)
pay_plain = random.randint(1, a4 - 1)
billing.publish(customer(c2))
gateway.publish(payment(f"{p}-P1", c2, "USD", pay_explicit, allocations=[(i3, pay_explicit)]))
gateway.publish(payment(f"{p}-P2", c2, "USD", pay_plain))
cap.wait(lambda ms: sum(1 for m in cap.events("payment.confirmed") if m.data.get("customer_id") == c2) >= 2, timeout=20)
billing.publish(invoice(i4, c2, "USD", a4, "2026-06-01"))
cap.wait(lambda ms: status_events(cap, i4), timeout=20)
billing.publish(invoice(i3, c2, "USD", a3, "2026-07-01"))
cap.wait(lambda ms: status_events(cap, i3), timeout=20)
cap.settle(quiet=1.0, timeout=10)
checks.equal(status_events(cap, i4)[-1]["balance"], money(a4 - pay_plain, "USD"), "I4 balance (only the plain credit)")
checks.equal(status_events(cap, i3)[-1]["balance"], money(a3 - pay_explicit, "USD"), "I3 balance (its held allocation)")

# (d) refund before its payment: held, applied when the payment arrives.
c3, i5 = f"{p}-C3", f"{p}-I5"
a5 = random.randint(5000, 99999)
r = random.randint(1, a5 - 1)
billing.publish(customer(c3))
billing.publish(invoice(i5, c3, "USD", a5, "2026-06-01"))
cap.wait(lambda ms: status_events(cap, i5), timeout=20)
gateway.publish(refund(f"{p}-P3", f"{p}-R3", "USD", r, id_=f"{p}-E-R3"))
checks.check(wait_until(lambda: f"{p}-E-R3" in held_ids(), timeout=hold - 1, step=0.2), "held list does not show the early refund")
gateway.publish(payment(f"{p}-P3", c3, "USD", a5, allocations=[(i5, a5)]))
cap.wait(lambda ms: any(e["to"] == "partially_paid" for e in status_events(cap, i5)), timeout=20)
checks.equal([(e["from"], e["to"], e["balance"]) for e in status_events(cap, i5)],
             [(None, "open", money(a5, "USD")), ("open", "paid", money(0, "USD")), ("paid", "partially_paid", money(r, "USD"))],
             "I5 status changes (payment, then the held refund)")

# (b) continued: the never-released one is dead-lettered after the hold time.
cap.wait(lambda ms: any(m.json.get("id") == f"{p}-E-NEVER" for m in cap.dead_letters() if p.encode() in m.body), timeout=hold + 20)
dl = [m for m in cap.dead_letters() if p.encode() in m.body and m.json.get("id") == f"{p}-E-NEVER"][0]
checks.equal(dl.reason, "unknown_reference", "reason of the expired held invoice")
checks.check(dl.body == arclient.encode(never), "expired held invoice: dead-letter body not byte-identical")
checks.check(f"{p}-E-NEVER" not in held_ids(), "the expired invoice is still listed as held")
checks.equal([m.json.get("id") for m in cap.dead_letters() if p.encode() in m.body], [f"{p}-E-NEVER"], "dead letters of this run")

checks.finish(prefix=p, invoices=[
    {"invoice_id": i1, "balance_minor": a1, "status": "open"},
    {"invoice_id": i3, "balance_minor": a3 - pay_explicit, "status": "paid" if pay_explicit == a3 else "partially_paid"},
    {"invoice_id": i4, "balance_minor": a4 - pay_plain, "status": "partially_paid"},
    {"invoice_id": i5, "balance_minor": r, "status": "partially_paid"},
], never_invoice=f"{p}-I-NEVER")
