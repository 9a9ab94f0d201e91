"""Scenario 13: a long book of many customers whose outcome depends on each customer's message
order, played at full speed (no pacing) by billing and the gateway in their natural order.

  s13_book.py publish STATE_FILE PREFIX SEED [CUSTOMERS [FROM TO]]

FROM/TO publish only book[FROM:TO] (the upgrade test plays the first part into the old work
queue and the rest while the new release starts); the state file lists the whole book's ids.

Builds the book from SEED alone (the prefix only names the ids), so runs with different prefixes
and the same seed publish the same book: the Swift test plays it into 1, 2 and 3 instances and
compares the books customer by customer. Each customer's story mixes what makes order matter:
payments without allocations (oldest due first among the invoices issued so far), over-payments
whose credit the next invoice takes on issue, allocations held for invoices not issued yet,
refunds (newest application first), credit notes, voids and adjustments of paid invoices, and
invoices that arrive before their customer (held). Refunds, voids and adjustments carry no
subject: the router finds their customer from the payment or invoice it routed before.

Messages of different customers are interleaved at random; each customer's keep their order.
Every publish waits for the broker's confirm before the next (the two publishers are separate
connections), so publish order is the order RabbitMQ received them in.

Writes STATE_FILE: the prefix, the event ids that end in the inbox, the customers, and counts.
"""
import json
import random
import sys

from common import Checks, arclient, money

DIGITS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


class Story:
    """One customer's messages in publish order, with just enough state to stay valid."""

    def __init__(self, rng, p, c):
        self.rng, self.p, self.c = rng, p, c
        self.cid = f"{p}-C{c}"
        self.currency = rng.choice(list(DIGITS))
        self.messages = []      # (role, body)
        self.open = []          # invoice ids issued, not voided
        self.payments = []      # [payment id, amount, refunded]
        self.pending_alloc = []  # invoice ids a payment allocated to before they were issued
        self.n = 0

    def unit(self):
        return 10 ** DIGITS[self.currency]

    def amount(self, low=5, high=900):
        return self.rng.randint(low, high) * self.unit() + self.rng.randint(0, self.unit() - 1)

    def next_id(self, kind):
        self.n += 1
        return f"{self.p}-{kind}{self.c}-{self.n}"

    def add(self, role, type_, data, subject=True):
        body = arclient.event(type_, data, source=f"{role}-it13", subject=self.cid if subject else None,
                              id_=f"{self.p}-e{self.c}-{len(self.messages)}")
        self.messages.append((role, body))

    def customer(self):
        self.add("billing", "customer.upserted", {"customer_id": self.cid, "name": f"Customer {self.c}"})

    def invoice(self, iid=None, amount=None):
        iid = iid or self.next_id("I")
        month = self.rng.randint(1, 9)
        self.add("billing", "invoice.issued", {
            "invoice_id": iid, "customer_id": self.cid, "number": iid, "currency": self.currency,
            "amount": money(amount or self.amount(), self.currency), "issue_date": f"2026-0{month}-01",
            "due_date": f"2026-{month + 1:02d}-{self.rng.randint(10, 28)}"})
        self.open.append(iid)
        return iid

    def payment(self, allocations=(), amount=None):
        pid = self.next_id("P")
        amount = amount or self.amount(1, 1200)
        # A gateway never allocates more than it received (allocations_exceed_payment). An
        # allocation larger than the invoice's balance at that moment is rejected
        # (amount_exceeds_balance): an order-dependent outcome the comparison covers too.
        allocations = [(i, min(a, amount)) for i, a in allocations]
        data = {"payment_id": pid, "customer_id": self.cid, "currency": self.currency, "amount": money(amount, self.currency),
                "method": self.rng.choice(["card", "ach", "wallet"]), "received_at": "2026-05-01T10:00:00Z"}
        if allocations:
            data["allocations"] = [{"invoice_id": i, "amount": money(a, self.currency)} for i, a in allocations]
        self.add("gateway", "payment.succeeded", data)
        self.payments.append([pid, amount, 0])
        return pid

    def refund(self):
        candidates = [x for x in self.payments if x[1] - x[2] > 1]
        if not candidates:
            return
        pay = self.rng.choice(candidates)
        back = self.rng.randint(1, pay[1] - pay[2])
        pay[2] += back
        self.add("gateway", "payment.refunded", {"payment_id": pay[0], "refund_id": self.next_id("R"), "amount": money(back, self.currency)},
                 subject=False)

    def credit_note(self):
        data = {"credit_note_id": self.next_id("N"), "customer_id": self.cid, "currency": self.currency,
                "amount": money(self.amount(1, 200), self.currency)}
        if self.open and self.rng.random() < 0.7:
            data["invoice_id"] = self.rng.choice(self.open)
        self.add("billing", "credit_note.issued", data)

    def void(self):
        if self.open:
            iid = self.open.pop(self.rng.randrange(len(self.open)))
            self.add("billing", "invoice.voided", {"invoice_id": iid, "reason": "issued in error"}, subject=False)

    def adjust(self):
        if self.open:
            iid = self.rng.choice(self.open)
            self.add("billing", "invoice.adjusted", {"invoice_id": iid, "amount": money(self.amount(1, 600), self.currency),
                                                     "reason": "price corrected"}, subject=False)

    def build(self):
        rng = self.rng
        late_customer = rng.random() < 0.15
        if late_customer:
            self.invoice()          # held until the customer arrives
            self.customer()
        else:
            self.customer()
        for _ in range(rng.randint(4, 9)):
            step = rng.random()
            if step < 0.28:
                self.invoice()
            elif step < 0.45:
                self.payment()      # oldest due first: depends on what is issued by now
            elif step < 0.55 and self.open:
                target = rng.choice(self.open)
                self.payment(allocations=[(target, self.amount(1, 250))])
            elif step < 0.62:
                future = self.next_id("I")   # allocation held for an invoice not issued yet
                self.payment(allocations=[(future, self.amount(1, 300))])
                self.pending_alloc.append(future)
            elif step < 0.70 and self.pending_alloc:
                self.invoice(iid=self.pending_alloc.pop(0))
            elif step < 0.78:
                self.refund()
            elif step < 0.85:
                self.credit_note()
            elif step < 0.92:
                self.adjust()
            else:
                self.void()
        # Over-payment, then an invoice that takes the credit on issue.
        if rng.random() < 0.6:
            self.payment(amount=self.amount(900, 2000))
            self.invoice()
        for future in self.pending_alloc:
            self.invoice(iid=future)
        self.pending_alloc = []
        return self.messages


def split(book, index):
    """The first position at or after `index` where no invoice waits for its customer (a late
    customer's invoice is held until the customer arrives; across the upgrade's pause it could
    outwait the test's short hold_seconds and be dead-lettered, which would be timing, not order)."""
    index = min(index, len(book))
    while index < len(book):
        upserted = {body["data"]["customer_id"] for _, body in book[:index] if body["type"] == "customer.upserted"}
        waiting = [body for _, body in book[:index] if body["type"] == "invoice.issued" and body["data"]["customer_id"] not in upserted]
        if not waiting:
            break
        index += 1
    return index


def main():
    checks = Checks()
    _, phase, state_file, p, seed = sys.argv[:5]
    customers = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    if phase != "publish":
        print(f"unknown phase {phase}", file=sys.stderr)
        sys.exit(2)
    rng = random.Random(int(seed))
    stories = [Story(rng, p, c).build() for c in range(customers)]
    # Interleave customers at random, each customer's messages in order.
    order = [c for c, story in enumerate(stories) for _ in story]
    rng.shuffle(order)
    positions = [0] * customers
    book = []
    for c in order:
        book.append(stories[c][positions[c]])
        positions[c] += 1
    start, end = (split(book, int(sys.argv[6])), split(book, int(sys.argv[7]))) if len(sys.argv) > 7 else (0, len(book))
    publishers = {"billing": arclient.Publisher("BILLING"), "gateway": arclient.Publisher("GATEWAY")}
    for role, body in book[start:end]:
        publishers[role].publish(body)
    for publisher in publishers.values():
        publisher.close()
    state = {"prefix": p, "seed": int(seed), "customers": [f"{p}-C{c}" for c in range(customers)],
             "event_ids": [body["id"] for _, body in book], "messages": len(book),
             "payments": sum(1 for _, body in book if body["type"] == "payment.succeeded")}
    with open(state_file, "w") as f:
        json.dump(state, f)
    checks.finish(prefix=p, messages=len(book), published=len(book[start:end]), customers=customers, payments=state["payments"])


main()
