"""Scenario 11: a daemon stopped for 20 simulated days catches up with ONE reminder per invoice.

  before STATE   customers and invoices (2033), passes every hour for 5 days
  during STATE   (the daemon is stopped) a payment and a dispute are published and wait in the queue
  after STATE    (the daemon is back) the queued messages are applied, then after 20 days without
                 a pass, the catch-up day is ticked hourly: each open invoice gets only the highest
                 step due (lower ones passed over for good), grouped per customer, step and
                 currency; the paid and the disputed invoice get nothing; everything equals the model.
"""
import collections
import pickle
import random
import sys

from common import Checks, prefix
from dunning_common import Timeline, instant

phase, state_file = sys.argv[1], sys.argv[2]
checks = Checks()
START = instant("2033-02-01T00:00:00Z")
DOWN_FROM = instant("2033-02-06T00:00:00Z")
BACK_AT = instant("2033-02-26T00:00:00Z")
zones = [None, "Pacific/Honolulu", "Pacific/Kiritimati", "America/New_York", "Asia/Kolkata"]


def save(t, extra):
    with open(state_file, "wb") as f:
        pickle.dump({"p": t.p, "model": t.model, "cursor": t.cursor, "barrier": t.barrier_customer, "passes": t.passes, **extra}, f)


def load():
    with open(state_file, "rb") as f:
        state = pickle.load(f)
    t = Timeline(checks, state["p"], state["cursor"], capture_queue=f"{state['p']}-capture")
    t.model, t.barrier_customer, t.passes = state["model"], state["barrier"], state["passes"]
    return t, state


if phase == "before":
    p = prefix("it11")
    t = Timeline(checks, p, START, capture_queue=f"{p}-capture")
    rng = random.Random(p)
    invoices = []
    for n in range(10):
        cid = f"{p}-C{n}"
        t.customer(cid, zones[n % len(zones)], at="2033-01-15T00:00:00Z")
        for k in range(rng.randint(3, 5)):
            iid = f"{cid}-I{k}"
            currency = "EUR" if k == 4 else "USD"
            due = f"2033-{rng.choice(['01', '02'])}-{rng.randint(1, 28):02d}"
            t.invoice(iid, cid, currency, f"{rng.randint(10, 900)}.{rng.randint(0, 99):02d}", due, "2033-01-15T00:00:00Z")
            invoices.append(iid)
    t.sync()
    t.advance(DOWN_FROM)
    save(t, {"invoices": invoices})
    checks.finish(prefix=p, phase=phase, passes=t.passes)

t, state = load()
if phase == "during":
    paid, disputed = state["invoices"][0], state["invoices"][1]
    inv = t.model.invoices[paid]
    t.pay(f"{t.p}-PAY", inv["customer"], inv["currency"], [(paid, f"{inv['balance'] // 100}.{inv['balance'] % 100:02d}")],
          "2033-02-10T12:30:00Z")
    t.dispute(f"{t.p}-D", disputed, "2033-02-12T12:30:00Z")
    save(t, {"invoices": state["invoices"], "paid": paid, "disputed": disputed})
    checks.finish(prefix=t.p, phase=phase)

# after: the daemon is running again; the barrier waits until it drained the queue.
t.sync()
t.skip_to(BACK_AT)
t.advance(instant("2033-02-27T00:00:00Z"))
messages, expected = t.compare("catch-up")
# The first pass after the downtime is the catch-up: one reminder line per open invoice.
first = [m for m in messages if m.json["time"].startswith("2033-02-26T00:00:00") and "invoices" in m.json["data"]]
per_invoice = collections.Counter(line["invoice_id"] for m in first for line in m.json["data"]["invoices"])
checks.check(all(n == 1 for n in per_invoice.values()), f"an invoice was in two reminders of the catch-up pass: {per_invoice}")
open_due = [i for i, inv in t.model.invoices.items() if inv["status"] in ("open", "partially_paid") and i != state["disputed"]]
checks.equal(sorted(per_invoice), sorted(open_due), "invoices in the catch-up pass (every open, undisputed one, once)")
checks.check(state["paid"] not in per_invoice and state["disputed"] not in per_invoice, "the paid or the disputed invoice was reminded")
groups = collections.Counter((m.json["data"]["customer_id"], m.routing_key, m.json["data"].get("level"), m.json["data"]["currency"]) for m in first)
checks.check(all(n == 1 for n in groups.values()), f"a customer got two reminders for one step and currency: {groups}")
checks.check(len(first) >= 8, f"the catch-up pass sent only {len(first)} reminders")
t.cap.delete()
t.close()
checks.finish(prefix=t.p, phase=phase, passes=t.passes, catchup_reminders=len(first), catchup_invoices=len(per_invoice),
              events=len(messages))
