"""Shared helpers for the black-box scenarios (not a scenario itself).

Every scenario runs against a daemon the Swift suite started with private exchanges and a private
database; their names come from the environment (IT_EVENTS_EXCHANGE, IT_DEAD_LETTER_EXCHANGE,
IT_EVENT_SOURCE). A scenario prints exactly one JSON line (its result) on stdout; it exits 1 when
one of its checks failed (the result then lists them under "failures") and 2 on an error.
"""
import json
import os
import subprocess
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import arclient  # noqa: E402

DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3, "NOK": 2}


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"missing environment variable {name} (run through the IntegrationTests suite)", file=sys.stderr)
        sys.exit(2)
    return value


EVENTS = env("IT_EVENTS_EXCHANGE")
DEAD_LETTERS = env("IT_DEAD_LETTER_EXCHANGE")
SOURCE = env("IT_EVENT_SOURCE")


def prefix(tag):
    """A per-run id prefix, so leftover or concurrent traffic cannot match our assertions."""
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def money(minor, currency):
    """Minor units → the decimal string the contract requires (independent of the daemon's code)."""
    digits = DIGITS[currency]
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    if digits == 0:
        return f"{sign}{minor}"
    return f"{sign}{minor // 10 ** digits}.{minor % 10 ** digits:0{digits}d}"


def capture(queue=None):
    """A capture of our daemon's events and dead letters. A named one (two-phase scenarios) expires
    10 minutes after its last use, so an interrupted run leaves nothing behind for long."""
    arguments = {"x-expires": 600_000} if queue else None
    return arclient.Capture(events_exchange=EVENTS, dead_letter_exchange=DEAD_LETTERS, queue=queue, queue_arguments=arguments)


class Checks:
    """Collects failed checks; `finish` prints the result line and exits."""

    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition

    def equal(self, actual, expected, what):
        return self.check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")

    def finish(self, **result):
        result["failures"] = self.failures
        print(json.dumps(result, sort_keys=True))
        sys.stdout.flush()
        sys.exit(1 if self.failures else 0)


def mine(messages, ids_prefix):
    """Messages about our ids only: outbound events whose data names a customer with our prefix,
    dead letters whose body mentions the prefix."""
    out = []
    for m in messages:
        if ids_prefix.encode() in m.body:
            out.append(m)
    return out


def status_events(cap, invoice_id):
    return [m.data for m in cap.events("invoice.status_changed") if m.data.get("invoice_id") == invoice_id]


def final_status(cap, invoice_id):
    events = status_events(cap, invoice_id)
    return events[-1] if events else None


def cli(*args, timeout=60):
    """Runs `receivablesd <args>` with the suite's environment; returns (status, output)."""
    completed = subprocess.run([env("RECEIVABLESD_BIN"), *args], capture_output=True, text=True, timeout=timeout)
    return completed.returncode, completed.stdout + completed.stderr


def held_ids():
    status, output = cli("held", "list")
    if status != 0:
        raise RuntimeError(f"held list failed ({status}): {output}")
    return output


def wait_until(predicate, timeout, step=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def customer(cid, name=None):
    return arclient.event("customer.upserted", {"customer_id": cid, "name": name or f"Customer {cid}"}, source="billing-it", subject=cid)


def invoice(iid, cid, currency, minor, due, issue="2026-01-05", number=None, id_=None):
    return arclient.event("invoice.issued", {
        "invoice_id": iid, "customer_id": cid, "number": number or iid, "currency": currency,
        "amount": money(minor, currency), "issue_date": issue, "due_date": due,
    }, source="billing-it", subject=cid, id_=id_)


def payment(pid, cid, currency, minor, allocations=(), id_=None):
    data = {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": money(minor, currency), "method": "card",
            "received_at": "2026-02-01T10:00:00Z"}
    if allocations:
        data["allocations"] = [{"invoice_id": i, "amount": money(a, currency)} for i, a in allocations]
    return arclient.event("payment.succeeded", data, source="gateway-it", subject=cid, id_=id_)


def refund(pid, rid, currency, minor, id_=None):
    return arclient.event("payment.refunded", {"payment_id": pid, "refund_id": rid, "amount": money(minor, currency)},
                          source="gateway-it", id_=id_)


class Books:
    """An independent reference model of SPEC "Money rules" for one customer and currency."""

    def __init__(self, currency):
        self.currency = currency
        self.invoices = {}      # id -> dict(amount, balance, due, issue, order)
        self.credit = []        # [payment_id, remaining] oldest first
        self.applications = []  # [seq, payment_id, invoice_id, amount, unwound]
        self.seq = 0

    def issue(self, iid, amount, due, issue="2026-01-05"):
        self.invoices[iid] = {"amount": amount, "balance": amount, "due": due, "issue": issue}
        for lot in self.credit:
            if lot[1] and self.invoices[iid]["balance"]:
                take = min(lot[1], self.invoices[iid]["balance"])
                lot[1] -= take
                self._apply(lot[0], iid, take)

    def _apply(self, pid, iid, amount):
        self.seq += 1
        self.invoices[iid]["balance"] -= amount
        self.applications.append([self.seq, pid, iid, amount, 0])
        return amount

    def open_by_due(self):
        return sorted((i for i, v in self.invoices.items() if v["balance"] > 0), key=lambda i: (self.invoices[i]["due"], self.invoices[i]["issue"], i))

    def receive(self, pid, amount, explicit=()):
        """Returns (allocations[(invoice, amount, invoice_balance)], unapplied)."""
        allocations = []
        rest = amount
        for iid, a in explicit:
            a = min(a, self.invoices[iid]["balance"], rest)
            if a:
                self._apply(pid, iid, a)
                rest -= a
                allocations.append((iid, a, self.invoices[iid]["balance"]))
        for iid in self.open_by_due():
            if not rest:
                break
            a = min(rest, self.invoices[iid]["balance"])
            self._apply(pid, iid, a)
            rest -= a
            allocations.append((iid, a, self.invoices[iid]["balance"]))
        if rest:
            self.credit.append([pid, rest])
        return allocations, rest

    def take_back(self, pid, amount):
        for lot in self.credit:
            if lot[0] == pid and amount:
                take = min(lot[1], amount)
                lot[1] -= take
                amount -= take
        for app in sorted(self.applications, key=lambda a: -a[0]):
            if app[1] == pid and amount:
                take = min(app[3] - app[4], amount)
                app[4] += take
                self.invoices[app[2]]["balance"] += take
                amount -= take
        assert amount == 0, "take-back larger than the payment"

    def balance(self):
        return sum(v["balance"] for v in self.invoices.values())

    def credit_balance(self):
        return sum(l[1] for l in self.credit)

    def status(self, iid):
        v = self.invoices[iid]
        if v["balance"] == 0:
            return "paid"
        return "open" if v["balance"] == v["amount"] else "partially_paid"
