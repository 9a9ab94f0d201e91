"""Scenarios 5 and 6: a stream of N messages while the Swift test stops PostgreSQL or kills the
daemon. Two phases, because the outage happens between them:

  stream.py publish STATE_FILE [N [PREFIX]]declares a named capture queue, publishes N messages paced
                                     over a few seconds, writes the expected outcome to STATE_FILE
  stream.py check STATE_FILE         waits for each invoice's final invoice.status_changed, checks
                                     that no message of the run was dead-lettered, deletes the queue

Payments allocate explicitly to one invoice each, so the expected balances do not depend on the
order in which redelivered messages are applied.
"""
import json
import random
import sys
import time
import uuid

from common import Checks, arclient, capture, customer, invoice, money, payment, prefix

checks = Checks()
phase, state_file = sys.argv[1], sys.argv[2]

if phase == "publish":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    p = sys.argv[4] if len(sys.argv) > 4 else prefix("it56")
    queue = f"ar.it-capture-{uuid.uuid4().hex[:12]}"
    cap = capture(queue=queue)
    messages, invoices, payments = [], {}, []
    customers = [f"{p}-C{c}" for c in range(max(1, n // 15))]
    messages += [customer(c) for c in customers]
    k = 0
    while len(messages) < n:
        cid = customers[k % len(customers)]
        iid = f"{p}-I{k}"
        amount = random.randint(1000, 500000)
        invoices[iid] = {"invoice_id": iid, "customer_id": cid, "amount_minor": amount, "balance_minor": amount}
        messages.append(invoice(iid, cid, "USD", amount, f"2026-0{1 + k % 9}-1{k % 10}"))
        mode = k % 4
        parts = {0: [amount], 1: [random.randint(1, amount - 1)], 2: [], 3: [amount // 2, amount - amount // 2]}[mode]
        for j, part in enumerate(parts):
            pid = f"{p}-P{k}-{j}"
            messages.append(payment(pid, cid, "USD", part, allocations=[(iid, part)]))
            payments.append({"payment_id": pid, "amount_minor": part})
            invoices[iid]["balance_minor"] -= part
        k += 1
    for inv in invoices.values():
        inv["status"] = "paid" if inv["balance_minor"] == 0 else ("open" if inv["balance_minor"] == inv["amount_minor"] else "partially_paid")
    billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")
    event_ids = []
    for i, body in enumerate(messages):
        (gateway if body["type"].startswith("payment.") else billing).publish(body)
        event_ids.append(body["id"])
        if i % 10 == 9:
            time.sleep(0.12)  # paced: about 4 s for 300 messages, so the outage lands mid-stream
    cap.close()
    with open(state_file, "w") as f:
        json.dump({"prefix": p, "queue": queue, "invoices": list(invoices.values()), "payments": payments,
                   "customers": customers, "event_ids": event_ids}, f)
    checks.finish(prefix=p, messages=len(messages), invoices=len(invoices), payments=len(payments))

elif phase == "check":
    state = json.load(open(state_file))
    p = state["prefix"]
    cap = capture(queue=state["queue"])
    expected = {i["invoice_id"]: i for i in state["invoices"]}

    def finals():
        last = {}
        for m in cap.events("invoice.status_changed"):
            iid = m.data.get("invoice_id")
            if iid in expected and m.data.get("to") == expected[iid]["status"] and m.data.get("balance") == money(expected[iid]["balance_minor"], "USD"):
                last[iid] = m.data
        return last

    try:
        cap.wait(lambda ms: len(finals()) == len(expected), timeout=150)
    except TimeoutError:
        pass
    cap.settle(quiet=2.0, timeout=20)
    missing = sorted(set(expected) - set(finals()))
    checks.check(not missing, f"{len(missing)} of {len(expected)} invoices have no invoice.status_changed to their final state, e.g. {missing[:5]}")
    dead = [m.json.get("id") if m.body.startswith(b"{") else m.body[:60] for m in cap.dead_letters() if p.encode() in m.body]
    checks.equal(dead, [], "dead letters of this run")
    confirmed = [m.data["payment_id"] for m in cap.events("payment.confirmed") if m.data.get("payment_id", "").startswith(p)]
    checks.equal(sorted(set(confirmed)), sorted(x["payment_id"] for x in state["payments"]), "payments confirmed")
    cap.delete()
    checks.finish(prefix=p, invoices=state["invoices"], payments=state["payments"], customers=state["customers"],
                  event_ids=state["event_ids"], events_published=len(cap.events()),
                  duplicate_confirmations=len(confirmed) - len(set(confirmed)))
else:
    print(f"unknown phase {phase}", file=sys.stderr)
    sys.exit(2)
