"""Scenario 9: `receivablesd dead-letter list` shows rejections; `dead-letter replay` applies a
message whose cause was fixed, does not launder a forbidden publisher, and de-duplicates."""
import os
import random

from common import Checks, arclient, capture, cli, customer, invoice, money, payment, prefix, status_events

checks = Checks()
hold = int(os.environ.get("IT_HOLD_SECONDS", "6"))
p = prefix("it9")
cid, iid = f"{p}-C", f"{p}-I"
amount = random.randint(1000, 99999)
cap = capture()
billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")


def dls(event_id):
    return [m for m in cap.dead_letters() if p.encode() in m.body and m.body.startswith(b"{") and m.json.get("id") == event_id]


# An invoice whose customer is not upserted in time: dead-lettered unknown_reference.
issued = invoice(iid, cid, "USD", amount, "2026-06-01", id_=f"{p}-E-INV")
billing.publish(issued)
# Billing may not send payments: forbidden_publisher.
forbidden = payment(f"{p}-PAY", cid, "USD", 100, id_=f"{p}-E-PAY")
billing.publish(forbidden)
cap.wait(lambda ms: dls(f"{p}-E-INV") and dls(f"{p}-E-PAY"), timeout=hold + 30)

status, listing = cli("dead-letter", "list")
checks.equal(status, 0, "dead-letter list exit status")
rows = {line.split()[4]: line.split() for line in listing.splitlines() if p in line and len(line.split()) > 5}
for eid, reason, type_ in ((f"{p}-E-INV", "unknown_reference", "invoice.issued"), (f"{p}-E-PAY", "forbidden_publisher", "payment.succeeded")):
    row = rows.get(eid)
    if checks.check(row is not None, f"dead-letter list has no row for {eid}:\n{listing[-1500:]}"):
        checks.equal((row[2], row[3]), (reason, type_), f"dead-letter list reason/type of {eid}")
status, filtered = cli("dead-letter", "list", "--reason", "forbidden_publisher")
checks.check(f"{p}-E-PAY" in filtered and f"{p}-E-INV" not in filtered, "dead-letter list --reason filters")

# Replaying the forbidden payment must not launder it: rejected again, as billing.
status, out = cli("dead-letter", "replay", "--id", f"{p}-E-PAY")
checks.equal(status, 0, f"replay of the forbidden payment: {out}")
cap.wait(lambda ms: len(dls(f"{p}-E-PAY")) >= 2, timeout=30)
again = dls(f"{p}-E-PAY")[-1]
checks.equal(again.reason, "forbidden_publisher", "reason after replaying the forbidden payment")
checks.check(again.body == arclient.encode(forbidden), "replayed forbidden payment: body not byte-identical")

# Fix the cause (the customer arrives), replay the invoice: applied now.
billing.publish(customer(cid))
status, out = cli("dead-letter", "replay", "--id", f"{p}-E-INV")
checks.equal(status, 0, f"replay of the invoice: {out}")
applied = True
try:
    cap.wait(lambda ms: status_events(cap, iid) or len(dls(f"{p}-E-INV")) >= 2, timeout=20)
    cap.settle(quiet=2.0, timeout=10)
except TimeoutError:
    applied = False
checks.check(applied and status_events(cap, iid), f"the replayed invoice was not applied after its customer arrived "
             f"(no invoice.status_changed within 20 s; dead letters for it: {[m.reason for m in dls(f'{p}-E-INV')]})")

# Replaying it again (already applied): no second effect.
status, out = cli("dead-letter", "replay", "--again", "--id", f"{p}-E-INV")
checks.equal(status, 0, f"second replay of the invoice: {out}")
marker = f"{p}-MARK"
billing.publish(invoice(marker, cid, "USD", 100, "2026-06-02"))
cap.wait(lambda ms: status_events(cap, marker), timeout=30)
cap.settle(quiet=1.5, timeout=10)
checks.check(len(status_events(cap, iid)) <= 1, f"second replay had an effect: {len(status_events(cap, iid))} invoice.status_changed")
checks.equal(len(dls(f"{p}-E-INV")), 1, "dead letters of the invoice after the replays")

checks.finish(prefix=p, invoice_id=iid, amount_minor=amount, forbidden_payment=f"{p}-PAY", invoice_event_id=f"{p}-E-INV")
