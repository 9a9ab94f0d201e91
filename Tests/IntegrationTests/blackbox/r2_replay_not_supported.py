"""bank.credit.received, bank.statement.received and reconciliation.resolved were dead-lettered
`not_supported_yet` by versions before reconciliation. After the upgrade, `receivablesd
dead-letter replay --reason not_supported_yet` applies them.

    r2_replay_not_supported.py prepare STATE   books a customer and invoices; writes the three
                                                messages (as the old version recorded them) to
                                                STATE and prints them for the Swift test to store
                                                as dead letters
    r2_replay_not_supported.py check STATE      after the replay: both credits reconciled, the
                                                exception resolved, each once
"""
import base64
import json
import sys

from common import Checks, arclient, capture, customer, invoice, prefix

import bankfiles

checks = Checks()
phase, state_file = sys.argv[1], sys.argv[2]

if phase == "prepare":
    p = prefix("r2")
    cid = f"{p}-C"
    account = bankfiles.iban("DE", "37040044" + str(abs(hash(p)) % 10 ** 10).zfill(10))
    reference = bankfiles.creditor_reference(p.replace("-", "")[-12:])
    cap = capture(queue=f"{p}-capture")
    billing = arclient.Publisher("BILLING")
    billing.publish(customer(cid))
    first = invoice(f"{p}-I1", cid, "EUR", 42000, "2026-04-01", number=f"{p}-N1")
    first["data"]["payment_reference"] = reference
    billing.publish(first)
    billing.publish(invoice(f"{p}-I2", cid, "EUR", 15000, "2026-04-02", number=f"{p}-N2"))
    cap.wait(lambda ms: len([m for m in cap.events("invoice.status_changed") if m.data.get("customer_id") == cid]) == 2, timeout=60)
    credit = arclient.event("bank.credit.received", {
        "entry_id": f"{p}-E1", "account": account, "currency": "EUR", "amount": "420.00", "booking_date": "2026-03-14",
        "structured_reference": reference}, source="bank-it", id_=f"{p}-M1")
    stmt = bankfiles.camt("053", account, "EUR", [
        {"ref": f"{p}-E2", "amount": 15000, "text": f"invoice {p}-N2"},
        {"ref": f"{p}-E3", "amount": 999, "text": "who knows"},
    ], f"{p}-S")
    statement = arclient.event("bank.statement.received", None, source="bank-it", id_=f"{p}-M2", format="camt.053",
                               data_base64=base64.b64encode(stmt).decode())
    resolved = arclient.event("reconciliation.resolved", {"entry_id": f"{p}-E3", "customer_id": cid, "note": "small overpayment"},
                              source="arteam-it", id_=f"{p}-M3")
    messages = [{"user": "bank", "type": "bank.credit.received", "body": credit},
                {"user": "bank", "type": "bank.statement.received", "body": statement},
                {"user": "arteam", "type": "reconciliation.resolved", "body": resolved}]
    with open(state_file, "w") as f:
        json.dump({"prefix": p, "customer": cid, "queue": cap.queue}, f)
    cap.close()
    billing.close()
    checks.finish(prefix=p, customer_id=cid, dead_letters=[
        {"source": m["body"]["source"], "event_id": m["body"]["id"], "type": m["type"], "user": m["user"],
         "body": json.dumps(m["body"])} for m in messages])

with open(state_file) as f:
    state = json.load(f)
p, cid = state["prefix"], state["customer"]
cap = capture(queue=state["queue"])


def mine(type_):
    return [m.data for m in cap.events(type_) if str(m.data.get("entry_id", "")).startswith(p)]


try:
    cap.wait(lambda ms: len(mine("reconciliation.matched")) >= 3, timeout=60)
except TimeoutError as error:
    checks.check(False, f"the replayed messages were not applied: {error}; dead letters: {[m.reason for m in cap.dead_letters()]}")
cap.settle(quiet=1.5, timeout=20)
outcomes = sorted((d["entry_id"], d["state"], d["rule"]) for d in mine("reconciliation.matched"))
checks.equal(outcomes, [(f"{p}-E1", "matched", "structured_reference"), (f"{p}-E2", "matched", "invoice_number"),
                        (f"{p}-E3", "partially_matched", "manual")], "replayed credits and resolution")
checks.equal([d["entry_id"] for d in mine("reconciliation.exception")], [f"{p}-E3"], "the unknown credit was an exception first")
checks.equal([m.reason for m in cap.dead_letters() if p.encode() in m.body], [], "dead letters after the replay")
cap.delete()
checks.finish(prefix=p, customer_id=cid, entries=[{"entry_id": f"{p}-E1", "state": "matched"}, {"entry_id": f"{p}-E2", "state": "matched"},
                                                   {"entry_id": f"{p}-E3", "state": "partially_matched"}],
              invoices=[{"invoice_id": f"{p}-I1", "balance_minor": 0, "status": "paid"}, {"invoice_id": f"{p}-I2", "balance_minor": 0, "status": "paid"}])
