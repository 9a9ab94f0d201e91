"""Scenario 14b (issue 14, SPEC section 2): one event id per fact.

First the two histories the issue reported (one JPY customer each):
  (a) an invoice paid in full by a card payment with an explicit allocation, then refunded in full;
  (b) a refund arriving before its payment (held), the payment, then a redelivered copy of the refund
      (same event id) and a re-send under a new event id.
Then random books of several customers: invoices, payments (explicit and on account), refunds and
chargebacks (some arriving before their payment and held), full refunds followed by new payments
(reopen, pay again), redeliveries and re-sends, published in bursts so batches mix them.
Expected: per invoice, the invoice.status_changed events are exactly the transitions of the
independent model (common.Books), in order, each under its own id; no event id is seen twice with
different content; every event id is unique among our events.
"""
import random
import sys
import time
import uuid

from common import Books, Checks, arclient, capture, customer, held_ids, money, prefix, wait_until

DIGITS = {"USD": 2, "JPY": 0}
seed = int(sys.argv[1]) if len(sys.argv) > 1 else random.randrange(1 << 30)
rng = random.Random(seed)



checks = Checks()
p = prefix("it14b")
cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")


class Customer:
    """One customer's books as published: the model, and the transitions it predicts per invoice."""

    def __init__(self, cid, currency):
        self.cid, self.currency = cid, currency
        self.books = Books(currency)
        self.payments = {}     # payment id -> amount (known to the daemon once published and not held)
        self.taken = {}        # payment id -> taken back so far
        self.held = []         # take-backs waiting for their payment: (payment id, body, amount)
        self.transitions = {}  # invoice id -> [(from, to, balance)]
        self.sent = []         # bodies, for redeliveries

    def statuses(self):
        return {i: self.books.status(i) for i in self.books.invoices}

    def record(self, before):
        after = self.statuses()
        for iid, status in after.items():
            if before.get(iid) != status:
                self.transitions.setdefault(iid, []).append((before.get(iid), status, money(self.books.invoices[iid]["balance"], self.currency)))

    def publish(self, publisher, body):
        publisher.publish(body)
        self.sent.append((publisher, body))

    def issue(self, iid, amount, due):
        self.publish(billing, arclient.event("invoice.issued", {
            "invoice_id": iid, "customer_id": self.cid, "number": iid, "currency": self.currency, "amount": money(amount, self.currency),
            "issue_date": "2026-01-05", "due_date": due}, source="billing-it", subject=self.cid))
        before = self.statuses()
        self.books.issue(iid, amount, due)
        self.record(before)

    def pay(self, pid, amount, explicit=()):
        data = {"payment_id": pid, "customer_id": self.cid, "currency": self.currency, "amount": money(amount, self.currency),
                "method": rng.choice(["card", "link", "us_bank_account", "paypal", "wire"]), "received_at": "2026-02-01T10:00:00Z"}
        if explicit:
            data["allocations"] = [{"invoice_id": i, "amount": money(a, self.currency)} for i, a in explicit]
        self.publish(gateway, arclient.event("payment.succeeded", data, source="gateway-it", subject=self.cid))
        before = self.statuses()
        self.books.receive(pid, amount, list(explicit))
        self.record(before)
        self.payments[pid] = amount
        self.taken.setdefault(pid, 0)
        # Take-backs that were waiting for this payment are released in the payment's transaction, in arrival order.
        for waiting_pid, _, waiting_amount in [h for h in self.held if h[0] == pid]:
            self.apply_take_back(pid, waiting_amount)
        self.held = [h for h in self.held if h[0] != pid]

    def take_back(self, pid, amount, kind, known=True):
        tid = f"{pid}-{kind[0].upper()}{uuid.uuid4().hex[:6]}"
        if kind == "refund":
            body = arclient.event("payment.refunded", {"payment_id": pid, "refund_id": tid, "amount": money(amount, self.currency)},
                                  source="gateway-it")
        else:
            body = arclient.event("payment.reversed", {"payment_id": pid, "reversal_id": tid, "amount": money(amount, self.currency),
                                                       "reason": rng.choice(["chargeback", "R01", "fraudulent", "MD06"])}, source="gateway-it")
        self.publish(gateway, body)
        if known:
            self.apply_take_back(pid, amount)
        else:
            self.held.append((pid, body, amount))
            # Names only a payment nobody has seen: routed by that id, not with the customer, so
            # it is "before its payment" only once it is held; a gateway cannot order it otherwise.
            if not wait_until(lambda: body["id"] in held_ids(), timeout=20):
                raise RuntimeError(f"take-back {body['id']} of unknown payment {pid} was not held within 20 s")

    def apply_take_back(self, pid, amount):
        before = self.statuses()
        self.books.take_back(pid, amount)
        self.taken[pid] += amount
        self.record(before)

    def remaining(self, pid):
        return self.payments[pid] - self.taken[pid]

    def open_invoices(self):
        return [i for i, v in self.books.invoices.items() if v["balance"] > 0]


def status_events():
    return [m for m in cap.events("invoice.status_changed") if p.encode() in m.body]


# --- the two reported histories ---------------------------------------------------------------
a = Customer(f"{p}-JA", "JPY")
b = Customer(f"{p}-JB", "JPY")
for c in (a, b):
    billing.publish(customer(c.cid))
a.issue(f"{p}-JA-I1", 120000, "2026-03-01")
a.pay(f"{p}-JA-P1", 120000, [(f"{p}-JA-I1", 120000)])
a.take_back(f"{p}-JA-P1", 120000, "refund")
b.issue(f"{p}-JB-I1", 90000, "2026-03-01")
b.pay(f"{p}-JB-P0", 30000, [(f"{p}-JB-I1", 30000)])
b.take_back(f"{p}-JB-P1", 10000, "refund", known=False)      # before its payment: held
early_refund = b.held[0][1]
b.pay(f"{p}-JB-P1", 60000, [(f"{p}-JB-I1", 60000)])           # releases it
gateway.publish(early_refund)                                 # redelivered copy: same event id
resent = dict(early_refund, id=str(uuid.uuid4()))
gateway.publish(resent)                                       # re-sent under a new event id

# --- random books ----------------------------------------------------------------------------
people = [Customer(f"{p}-C{n}", rng.choice(["USD", "JPY"])) for n in range(5)]
for c in people:
    billing.publish(customer(c.cid))
counter = 0
for step in range(70):
    c = rng.choice(people)
    counter += 1
    unit = 10 ** DIGITS[c.currency]
    roll = rng.random()
    if roll < 0.22 or not c.books.invoices:
        c.issue(f"{c.cid}-I{counter}", rng.randint(20, 400) * unit * (100 if c.currency == "JPY" else 1), f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}")
    elif roll < 0.55:
        opened = c.open_invoices()
        explicit = []
        if opened and rng.random() < 0.65:
            target = rng.choice(opened)
            balance = c.books.invoices[target]["balance"]
            explicit = [(target, balance if rng.random() < 0.6 else rng.randint(1, balance))]
        amount = sum(x for _, x in explicit) + (rng.randint(1, 300) * unit if rng.random() < 0.4 or not explicit else 0)
        pid = f"{c.cid}-P{counter}"
        if rng.random() < 0.2:
            c.take_back(pid, max(1, amount // 3), rng.choice(["refund", "reversal"]), known=False)   # arrives first: held
        c.pay(pid, amount, explicit)
    elif roll < 0.8:
        refundable = [pid for pid in c.payments if c.remaining(pid) > 0]
        if refundable:
            pid = rng.choice(refundable)
            whole = rng.random() < 0.5
            c.take_back(pid, c.remaining(pid) if whole else rng.randint(1, c.remaining(pid)), rng.choice(["refund", "reversal"]))
    elif c.sent:
        publisher, body = rng.choice(c.sent)
        publisher.publish(body if rng.random() < 0.5 else dict(body, id=str(uuid.uuid4())))  # redelivery / re-send: no second effect
    if rng.random() < 0.15:
        time.sleep(0.2)  # let a batch go, so later messages meet different batch boundaries

# A hard decline sent twice under two event ids is one failure: the customer is told once.
decline = arclient.event("payment.failed", {"payment_id": f"{p}-JA-PF", "customer_id": a.cid, "currency": "JPY", "amount": "5000",
                                            "method": "card", "failure_code": "card_declined", "retryable": False},
                         source="gateway-it", subject=a.cid)
gateway.publish(decline)
gateway.publish(dict(decline, id=str(uuid.uuid4())))

expected = {}
for c in [a, b] + people:
    expected.update(c.transitions)
total = sum(len(v) for v in expected.values())
cap.wait(lambda ms: len(status_events()) >= total, timeout=90)
cap.settle(quiet=2.0, timeout=30)

events = status_events()
by_invoice = {}
ids = {}
for m in events:
    event_id = m.json["id"]
    if event_id in ids and ids[event_id] != m.body:
        checks.check(False, f"event id {event_id} arrived with two different bodies")
    ids[event_id] = m.body
    d = m.data
    by_invoice.setdefault(d["invoice_id"], []).append((d["from"], d["to"], d["balance"]))
# The broker may deliver a re-published row twice (at-least-once); consumers de-duplicate by id, so do we.
unique_events = len(ids)
checks.equal(unique_events, total, "status events (distinct ids) vs transitions of the model")
for iid in sorted(set(expected) | set(by_invoice)):
    seen, dedup = set(), []
    for m in events:
        if m.data["invoice_id"] == iid and m.json["id"] not in seen:
            seen.add(m.json["id"])
            dedup.append((m.data["from"], m.data["to"], m.data["balance"]))
    checks.equal(dedup, expected.get(iid, []), f"{iid} status events")
checks.equal(by_invoice.get(f"{p}-JA-I1"), [(None, "open", "120000"), ("open", "paid", "0"), ("paid", "open", "120000")],
             "issue 14 (a): paid in full, refunded in full")
checks.equal(by_invoice.get(f"{p}-JB-I1"), [(None, "open", "90000"), ("open", "partially_paid", "60000"), ("partially_paid", "paid", "0"),
                                             ("paid", "partially_paid", "10000")], "issue 14 (b): held refund, payment, redelivered refund")
all_ours = [m for m in cap.events() if p.encode() in m.body]
distinct = {m.json["id"]: m.body for m in all_ours}
checks.equal(len({(m.json["type"], m.json["id"]) for m in all_ours}), len(distinct), "an event id names one event type")
checks.equal([m.reason for m in cap.dead_letters() if p.encode() in m.body], [], "dead letters")
notices = {m.json["id"] for m in cap.events("payment.failed_notice") if m.data.get("payment_id") == f"{p}-JA-PF"}
checks.equal(len(notices), 1, "payment.failed_notice for one failure sent twice")

checks.finish(prefix=p, seed=seed, transitions=total, status_event_ids=sorted(ids),
              invoices=[{"invoice_id": i, "balance_minor": c.books.invoices[i]["balance"], "status": c.books.status(i)}
                        for c in [a, b] + people for i in c.books.invoices])
