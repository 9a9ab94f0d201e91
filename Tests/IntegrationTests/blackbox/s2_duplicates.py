"""Scenario 2: de-duplication by (source, id) and by business identity (SPEC section 7)."""
import json
import random

from common import Checks, arclient, capture, customer, invoice, money, prefix, status_events

checks = Checks()
p = prefix("it2")
cid = f"{p}-C"
iid = f"{p}-INV"
amount = random.randint(10000, 999999)
cn_amount = random.randint(100, amount - 1)
cap = capture()
billing = arclient.Publisher("BILLING")

billing.publish(customer(cid))
issued = invoice(iid, cid, "USD", amount, "2026-05-01", id_=f"{p}-E1")
body = json.dumps(issued).encode()
billing.publish(body, routing_key="invoice.issued")
billing.publish(body, routing_key="invoice.issued")            # same source+id: redelivery/republish
same_new_id = dict(issued, id=f"{p}-E2")                         # same invoice, same content, new event id
billing.publish(same_new_id)
conflicting = invoice(iid, cid, "USD", amount + 100, "2026-05-01", id_=f"{p}-E3")  # same invoice, different amount
billing.publish(conflicting)

note = arclient.event("credit_note.issued", {"credit_note_id": f"{p}-CN", "customer_id": cid, "currency": "USD",
                                             "amount": money(cn_amount, "USD"), "invoice_id": iid}, source="billing-it", subject=cid,
                      id_=f"{p}-N1")
note_body = json.dumps(note).encode()
billing.publish(note_body, routing_key="credit_note.issued")
billing.publish(note_body, routing_key="credit_note.issued")
billing.publish(dict(note, id=f"{p}-N2"))
note_conflict = json.loads(note_body)
note_conflict["id"] = f"{p}-N3"
note_conflict["data"]["amount"] = money(cn_amount + 1, "USD")
billing.publish(note_conflict)
# A marker after everything: once its event is out, all the above has been processed.
billing.publish(invoice(f"{p}-MARK", cid, "USD", 100, "2026-05-02"))

cap.wait(lambda ms: status_events(cap, f"{p}-MARK") and len([m for m in cap.dead_letters() if p.encode() in m.body]) >= 2, timeout=60)
cap.settle(quiet=2.0)

dls = {m.json.get("id"): m for m in cap.dead_letters() if p.encode() in m.body}
checks.equal(sorted(dls), sorted([f"{p}-E3", f"{p}-N3"]), "dead-lettered event ids")
for eid, sent in ((f"{p}-E3", json.dumps(conflicting).encode()), (f"{p}-N3", json.dumps(note_conflict).encode())):
    if eid in dls:
        checks.equal(dls[eid].reason, "conflicting_duplicate", f"reason for {eid}")
        checks.check(dls[eid].body == sent, f"dead letter {eid}: body not byte-identical")

statuses = [(e["from"], e["to"], e["balance"]) for e in status_events(cap, iid)]
checks.equal(statuses, [(None, "open", money(amount, "USD")), ("open", "partially_paid", money(amount - cn_amount, "USD"))],
             "invoice.status_changed events of the invoice (one set)")
ledgers = [m.data for m in cap.events("ledger.entry_posted") if m.data.get("customer_id") == cid]
ledger_for_invoice = [d for d in ledgers if d.get("reference") != f"{p}-MARK"
                      and not any(l.get("invoice_id") == f"{p}-MARK" for l in d.get("lines", []))]
checks.equal(len(ledger_for_invoice), 2, "ledger.entry_posted for the invoice and the credit note")
all_ids = [m.json["id"] for m in cap.events() if m.data and m.data.get("customer_id") == cid]
checks.equal(len(all_ids), len(set(all_ids)), "no outbound event published twice")

checks.finish(prefix=p, invoice_id=iid, credit_note_id=f"{p}-CN", amount_minor=amount, balance_minor=amount - cn_amount,
              event_ids=[f"{p}-E1", f"{p}-E2", f"{p}-N1", f"{p}-N2"])
