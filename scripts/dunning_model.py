"""An independent model of receivablesd's dunning and payment retries, written from
docs/dunning.md (not from the Swift code), used by the black-box tests and the demo to compute
which reminders, escalations, retry requests and failure notices a history must produce.

Money is kept in integer minor units. Payments in the histories that use this model allocate
explicitly (the model does not re-implement oldest-due-first allocation), and refunds take money
back from a payment's applications newest first, as SPEC "Money rules" say.
"""
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}
OPEN = ("open", "partially_paid")
RETRY_OUTCOME_WAIT = dt.timedelta(days=2)


def minor(text, currency):
    """'12.50' → 1250 (exact, no floats)."""
    digits = DIGITS[currency]
    whole, _, fraction = text.partition(".")
    assert len(fraction) <= digits, text
    return int(whole) * 10 ** digits + (int(fraction.ljust(digits, "0")) if digits else 0)


def money(value, currency):
    digits = DIGITS[currency]
    if digits == 0:
        return str(value)
    return f"{value // 10 ** digits}.{value % 10 ** digits:0{digits}d}"


class Policy:
    def __init__(self, name, shape):
        self.name = name
        self.steps = sorted(((s["offset_days"], s["event"], s["channel"], s["template"]) for s in shape["steps"]), key=lambda s: s[0])
        self.minimum = {c: minor(a, c) for c, a in (shape.get("minimum_balance") or {}).items()}
        self.grace = shape.get("grace_days", 3)
        self.delays = shape.get("retry_delays_days", [1, 3, 7])


STANDARD = {"steps": [
    {"offset_days": -3, "event": "reminder.upcoming", "channel": "email", "template": "invoice-upcoming"},
    {"offset_days": 0, "event": "reminder.due", "channel": "email", "template": "invoice-due"},
    {"offset_days": 7, "event": "reminder.overdue", "channel": "email", "template": "invoice-overdue-1"},
    {"offset_days": 14, "event": "reminder.overdue", "channel": "email", "template": "invoice-overdue-2"},
    {"offset_days": 30, "event": "reminder.final_notice", "channel": "email", "template": "final-notice"},
    {"offset_days": 45, "event": "dunning.escalated", "channel": "collections", "template": "escalation"},
], "grace_days": 3, "retry_delays_days": [1, 3, 7]}


def load_policies(path=None):
    """(default policy name, {name: Policy}) from a policies file, or the built-in standard one."""
    if path is None:
        return "standard", {"standard": Policy("standard", STANDARD)}
    with open(path) as f:
        document = yaml.safe_load(f)
    return document["default_policy"], {name: Policy(name, shape) for name, shape in document["policies"].items()}


def zone(name):
    """The customer's zone: unknown or absent names count as UTC (docs/dunning.md)."""
    if not name:
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def instant(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(moment):
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Model:
    def __init__(self, policies_path=None, hard_declines=()):
        self.default, self.policies = load_policies(policies_path)
        self.hard = {c.strip().lower() for c in hard_declines}
        self.customers = {}
        self.invoices = {}
        self.applications = []   # [seq, payment, invoice, amount, unwound]
        self.payments = set()
        self.disputes = {}
        self.promises = []       # (invoice ids, promised date)
        self.pending = {}
        self.failures = {}       # payment -> set of attempts
        self.retries = {}        # (payment, attempt) -> dict
        self.reminded = set()    # (customer, offset, local date, currency)
        self.out = []            # expected events, in order
        self.seq = 0

    def policy(self, customer):
        return self.policies.get(self.customers[customer]["policy"]) or self.policies[self.default]

    # --- facts -------------------------------------------------------------------------------
    def customer(self, cid, time_zone=None, policy=None):
        self.customers[cid] = {"zone": zone(time_zone), "policy": policy}

    def issue(self, iid, cid, number, currency, amount, due):
        self.invoices[iid] = {"customer": cid, "number": number, "currency": currency, "amount": amount, "balance": amount,
                              "status": "open", "due": dt.date.fromisoformat(due), "sent": set()}

    def _status(self, inv):
        if inv["status"] in ("voided", "written_off"):
            return
        inv["status"] = "paid" if inv["balance"] == 0 else ("open" if inv["balance"] == inv["amount"] else "partially_paid")

    def pay(self, pid, allocations):
        """payment.succeeded with explicit allocations [(invoice, minor)] that fit the balances."""
        self.payments.add(pid)
        for iid, amount in allocations:
            inv = self.invoices[iid]
            assert 0 < amount <= inv["balance"], (iid, amount)
            inv["balance"] -= amount
            self._status(inv)
            self.seq += 1
            self.applications.append([self.seq, pid, iid, amount, 0])
        if pid in self.pending:
            self.pending[pid]["state"] = "settled"
        for key, retry in self.retries.items():
            if key[0] == pid and retry["state"] in ("scheduled", "requested"):
                retry["state"] = "cancelled"

    def refund(self, pid, amount):
        for app in sorted(self.applications, key=lambda a: -a[0]):
            if app[1] == pid and amount:
                take = min(app[3] - app[4], amount)
                app[4] += take
                amount -= take
                inv = self.invoices[app[2]]
                inv["balance"] += take
                self._status(inv)
        assert amount == 0

    def close(self, iid, status):
        self.invoices[iid]["status"] = status
        self.invoices[iid]["balance"] = 0

    def dispute_open(self, did, iid):
        self.disputes.setdefault(did, {"invoice": iid, "state": "open"})

    def dispute_resolve(self, did, iid):
        self.disputes[did] = {"invoice": iid, "state": "resolved"}

    def promise(self, iids, promised):
        self.promises.append((set(iids), dt.date.fromisoformat(promised)))

    def pending_payment(self, pid, cid, currency, iids):
        self.pending[pid] = {"customer": cid, "currency": currency, "invoices": list(iids), "state": "pending"}

    def failed(self, pid, cid, currency, amount, code, retryable, iids, time, attempt=None):
        """payment.failed at CloudEvents `time` (an aware datetime)."""
        if attempt is None:
            requested = [a for (p, a), r in self.retries.items() if p == pid and r["state"] == "requested"]
            attempt = max(requested) if requested else 1
        attempts = self.failures.setdefault(pid, set())
        if attempt in attempts:
            return
        if pid in self.pending and self.pending[pid]["state"] == "pending":
            self.pending[pid]["state"] = "failed"
        newer = any(a > attempt for a in attempts)
        attempts.add(attempt)
        if newer or pid in self.payments:
            return
        for key, retry in self.retries.items():
            if key[0] == pid and retry["state"] in ("scheduled", "requested"):
                retry["state"] = "superseded"
        delays = self.policy(cid).delays
        if code.strip().lower() in self.hard or not retryable or attempt > len(delays):
            self.out.append({"type": "payment.failed_notice", "payment_id": pid, "customer_id": cid, "failure_code": code,
                             "next_attempt": "none", "attempt": attempt, "amount": money(amount, currency), "currency": currency})
            return
        self.retries[(pid, attempt + 1)] = {"customer": cid, "currency": currency, "invoices": list(iids),
                                            "not_before": time + dt.timedelta(days=delays[attempt - 1]), "state": "scheduled"}

    # --- a scheduler pass --------------------------------------------------------------------
    def tick(self, now):
        for (pid, attempt), retry in sorted(self.retries.items(), key=lambda kv: (kv[1]["not_before"], kv[0])):
            if retry["state"] != "scheduled" or retry["not_before"] > now:
                continue
            statuses = [self.invoices[i]["status"] for i in retry["invoices"] if i in self.invoices]
            if statuses and not any(s in OPEN for s in statuses):
                retry["state"] = "cancelled"
                continue
            retry["state"] = "requested"
            self.out.append({"type": "payment.retry_requested", "time": rfc3339(now), "payment_id": pid, "attempt": attempt,
                             "not_before": rfc3339(retry["not_before"]), "customer_id": retry["customer"]})
        for cid in sorted(self.customers):
            self._remind(cid, now)

    def _remind(self, cid, now):
        policy = self.policy(cid)
        today = now.astimezone(self.customers[cid]["zone"]).date()
        mine = [(iid, inv) for iid, inv in self.invoices.items() if inv["customer"] == cid and inv["status"] in OPEN and inv["balance"] > 0]
        owed = {}
        for _, inv in mine:
            owed[inv["currency"]] = owed.get(inv["currency"], 0) + inv["balance"]
        groups = {}
        for iid, inv in mine:
            due = [(level, step) for level, step in enumerate(policy.steps, start=1) if inv["due"] + dt.timedelta(days=step[0]) <= today]
            if not due:
                continue
            level, step = due[-1]
            if any(o >= step[0] for o in inv["sent"]):
                continue
            if self._waits(cid, iid, inv, policy, today, now, owed, step[0]):
                continue
            groups.setdefault((step[0], inv["currency"]), (level, step, []))[2].append(iid)
        for (offset, currency), (level, step, iids) in sorted(groups.items()):
            iids.sort(key=lambda i: (self.invoices[i]["due"], i))
            for start in range(0, len(iids), 1000):
                part = iids[start:start + 1000]
                lines = [{"invoice_id": i, "number": self.invoices[i]["number"], "balance": money(self.invoices[i]["balance"], currency),
                          "due_date": self.invoices[i]["due"].isoformat(), "days_overdue": (today - self.invoices[i]["due"]).days}
                         for i in part]
                self.out.append({"type": step[1], "time": rfc3339(now), "customer_id": cid, "level": level, "local_date": today.isoformat(),
                                 "currency": currency, "total": money(sum(self.invoices[i]["balance"] for i in part), currency),
                                 "channel": step[2], "template": step[3], "invoices": lines})
            for i in iids:
                self.invoices[i]["sent"].add(offset)
            self.reminded.add((cid, offset, today, currency))

    def _waits(self, cid, iid, inv, policy, today, now, owed, offset):
        if any(d["invoice"] == iid and d["state"] == "open" for d in self.disputes.values()):
            return True
        promised = [p for ids, p in self.promises if iid in ids]
        if promised and today <= max(promised) + dt.timedelta(days=policy.grace):
            return True
        for p in self.pending.values():
            if p["state"] == "pending" and p["customer"] == cid and (iid in p["invoices"] if p["invoices"] else p["currency"] == inv["currency"]):
                return True
        for r in self.retries.values():
            if r["customer"] != cid or not (iid in r["invoices"] if r["invoices"] else r["currency"] == inv["currency"]):
                continue
            if r["state"] == "scheduled" or (r["state"] == "requested" and now < r["not_before"] + RETRY_OUTCOME_WAIT):
                return True
        minimum = policy.minimum.get(inv["currency"])
        if minimum is not None and owed[inv["currency"]] < minimum:
            return True
        return (cid, offset, today, inv["currency"]) in self.reminded


def canonical(event):
    """A comparable form of a dunning event (model dict or captured `data` plus type/time)."""
    t = event["type"]
    if t == "payment.retry_requested":
        return (t, event["payment_id"], event["attempt"], event["not_before"], event["time"])
    if t == "payment.failed_notice":
        return (t, event["payment_id"], event.get("attempt"), event["failure_code"], event["next_attempt"])
    lines = tuple((l["invoice_id"], l["number"], l["balance"], l["due_date"], l["days_overdue"]) for l in event["invoices"])
    return (t, event["customer_id"], event.get("level"), event.get("local_date"), event["currency"], event["total"],
            event.get("channel"), event.get("template"), lines, event["time"])


DUNNING_TYPES = ("reminder.upcoming", "reminder.due", "reminder.overdue", "reminder.final_notice", "dunning.escalated",
                 "payment.retry_requested", "payment.failed_notice")


def captured(message):
    """A captured AMQP message of a dunning type → the dict `canonical` reads."""
    body = message.json
    data = dict(body["data"])
    data["type"] = body["type"]
    data["time"] = normalise_time(body["time"])
    return data


def normalise_time(text):
    return rfc3339(instant(text))
