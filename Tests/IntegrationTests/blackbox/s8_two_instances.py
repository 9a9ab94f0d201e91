"""Scenario 8: two daemon instances on one queue; a shuffled, duplicated stream of invoices,
payments and refunds for several customers; the result must equal a reference model.

Payments allocate explicitly to one invoice and refunds follow their payment in the stream (the
two consumers may still apply them out of order: a refund is then held until its payment), so
the model's final balances do not depend on the interleaving.
"""
import json
import random

from common import Checks, arclient, capture, customer, invoice, money, payment, prefix, refund

checks = Checks()
seed = random.randrange(1 << 30)
rng = random.Random(seed)
p = prefix("it8")
cap = capture()
billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")
currencies = ["USD", "EUR", "JPY", "KWD"]

customers = [f"{p}-C{c}" for c in range(5)]
invoices, stream, payments_by_invoice = {}, [], {}
for c, cid in enumerate(customers):
    for k in range(rng.randint(3, 6)):
        cur = rng.choice(currencies)
        iid = f"{p}-I{c}-{k}"
        amount = rng.randint(1000, 900000)
        invoices[iid] = {"invoice_id": iid, "customer_id": cid, "currency": cur, "amount_minor": amount, "balance_minor": amount}
        stream.append(("i", iid, invoice(iid, cid, cur, amount, f"2026-0{rng.randint(1, 9)}-1{k}")))
        left = amount
        for j in range(rng.randint(0, 3)):
            if left <= 1:
                break
            part = rng.randint(1, left if rng.random() < 0.3 else max(1, left // 2))
            left -= part
            pid = f"{p}-P{c}-{k}-{j}"
            pay = payment(pid, cid, cur, part, allocations=[(iid, part)])
            invoices[iid]["balance_minor"] -= part
            stream.append(("p", pid, pay))
            if rng.random() < 0.4:
                back = rng.randint(1, part)
                stream.append(("r", pid, refund(pid, f"{p}-R{c}-{k}-{j}", cur, back)))
                invoices[iid]["balance_minor"] += back

# Shuffle, keeping each refund after its payment.
rng.shuffle(stream)
seen, ordered, waiting = set(), [], []
for kind, key, body in stream:
    if kind == "r" and key not in seen:
        waiting.append((kind, key, body))
        continue
    ordered.append(body)
    seen.add(key)
    for w in [w for w in waiting if w[1] in seen]:
        ordered.append(w[2])
        waiting.remove(w)
ordered += [w[2] for w in waiting]
# Duplicates: the same message again (same source+id), and the same business fact under a new id.
dupes = rng.sample(ordered, k=len(ordered) // 4)
for body in dupes:
    ordered.insert(rng.randint(ordered.index(body) + 1, len(ordered)), body)
for body in rng.sample([b for b in ordered if b["type"] in ("invoice.issued", "payment.succeeded", "payment.refunded")], k=8):
    renamed = dict(body, id=body["id"] + "-again")
    ordered.insert(rng.randint(ordered.index(body) + 1, len(ordered)), renamed)

for inv in invoices.values():
    inv["status"] = "paid" if inv["balance_minor"] == 0 else ("open" if inv["balance_minor"] == inv["amount_minor"] else "partially_paid")
for cid in customers:
    billing.publish(customer(cid))
for body in ordered:
    (gateway if body["type"].startswith("payment.") else billing).publish(body)

def final_reached():
    """Invoices with an invoice.status_changed to their expected final status. (The event fires on
    status changes only, so a second partial payment has none; balances are checked in the
    database and the summaries. Not necessarily the last event: order is checked in scenario 4.)"""
    reached = {}
    for m in cap.events("invoice.status_changed"):
        iid = m.data.get("invoice_id")
        if iid in invoices and m.data.get("to") == invoices[iid]["status"]:
            reached[iid] = m.data
    return reached


def done():
    return len(final_reached()) == len(invoices)


try:
    cap.wait(lambda ms: done(), timeout=60)
except TimeoutError:
    pass
cap.settle(quiet=2.0, timeout=20)
reached = final_reached()
missing = sorted(set(invoices) - set(reached))
checks.check(not missing, f"{len(missing)} invoices never reported their expected final balance: "
             + ", ".join(f"{i} (expected {invoices[i]['status']})" for i in missing[:6]))
dead = [m for m in cap.dead_letters() if p.encode() in m.body]
checks.equal([(m.json.get("type"), m.reason) for m in dead], [], "dead letters of this run (type, reason)")

portal = arclient.Portal()
import common  # noqa: E402
for cid in customers:
    reply = portal.request("account.summary.requested", {"customer_id": cid}, expect_source=common.SOURCE)
    got = {b["currency"]: b["balance"] for b in reply["data"].get("balances", []) if b["balance"] != money(0, b["currency"])}
    want = {}
    for v in invoices.values():
        if v["customer_id"] == cid and v["balance_minor"]:
            want[v["currency"]] = want.get(v["currency"], 0) + v["balance_minor"]
    checks.equal(got, {c: money(m, c) for c, m in want.items()}, f"{cid} summary balances")

checks.finish(prefix=p, seed=seed, messages=len(ordered) + len(customers), invoices=list(invoices.values()),
              distinct_event_ids=len({b["id"] for b in ordered}) + len(customers))
