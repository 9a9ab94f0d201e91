#!/usr/bin/python3
"""The dunning part of the demo: 90 days of receivables history in 2032, played through the broker
as billing, gateway and portal would, and ticked hourly with `receivablesd dunning tick --now`, so
three months of reminders, escalations and payment retries take seconds. Prints the reminders sent
per level per day, escalations, retries and failure notices; checks that every event reached
ar.events once and that the independent model (scripts/dunning_model.py) computes the same events.

Customers in six time zones (Honolulu UTC-10 to Kiritimati UTC+14), two policies; invoices paid on
time, late, in part, disputed, promised (kept or broken), failing cards retried on the policy's
schedule, hard declines, pending ACH debits, refunds reopening paid invoices, and some never paid.

Run by scripts/demo.sh (services environment, RECEIVABLESD_BIN, the daemon running with
RECEIVABLESD_POLICIES_FILE). Exit status 0 when the history was played and the checks held.
"""
import argparse
import collections
import datetime as dt
import json
import os
import pathlib
import random
import subprocess
import sys
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import arclient  # noqa: E402
import dunning_model  # noqa: E402
from dunning_model import canonical, captured, money, rfc3339, DUNNING_TYPES  # noqa: E402

START = dt.datetime(2032, 1, 1, 12, 30, tzinfo=dt.timezone.utc)
DAYS = 90
ZONES = [None, "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Pacific/Honolulu", "Pacific/Kiritimati"]
HARD = ["stolen_card", "lost_card", "pickup_card", "fraudulent", "restricted_card", "card_not_supported", "invalid_account",
        "account_closed", "no_account", "authorization_revoked", "R02", "R03", "R04", "R07", "R08", "R10", "R16", "R20", "R29",
        "AC04", "AC06", "MD01", "MD07"]


class Story:
    """Messages by simulated day, each also applied to the model when it is played."""

    def __init__(self, seed, prefix, policies):
        self.rng = random.Random(seed)
        self.p = prefix
        self.model = dunning_model.Model(policies, HARD)
        self.days = collections.defaultdict(list)   # day index -> [(publisher, type, data, apply)]
        self.explain_at = None
        self.customers = []

    def add(self, day, who, type_, data, apply):
        if 0 <= day < DAYS:
            self.days[day].append((who, type_, data, apply))

    def generate(self):
        rng, m = self.rng, self.model
        for n in range(24):
            cid = f"{self.p}-C{n:02d}"
            zone = ZONES[n % len(ZONES)]
            policy = "gentle" if n % 4 == 3 else None
            data = {"customer_id": cid, "name": f"Demo customer {n}"}
            if zone:
                data["time_zone"] = zone
            if policy:
                data["dunning_policy"] = policy
            self.add(0, "billing", "customer.upserted", data, lambda c=cid, z=zone, pol=policy: m.customer(c, z, pol))
            self.customers.append(cid)
            delays = m.policies[policy or m.default].delays
            for k in range(rng.randint(3, 5)):
                self.invoice(cid, k, delays)

    def invoice(self, cid, k, delays):
        rng, m = self.rng, self.model
        iid = f"{cid}-INV{k}"
        currency = "EUR" if rng.random() < 0.15 else "USD"
        amount = rng.randint(50, 2000) * 100 + rng.choice([0, 0, 50, 99])
        issued = rng.randint(0, 55)
        due = issued + 30
        due_date = (START + dt.timedelta(days=due)).date().isoformat()
        self.add(issued, "billing", "invoice.issued", {
            "invoice_id": iid, "customer_id": cid, "number": f"DM-{iid.split('-', 1)[1]}", "currency": currency, "amount": money(amount, currency),
            "issue_date": (START + dt.timedelta(days=issued)).date().isoformat(), "due_date": due_date,
        }, lambda: m.issue(iid, cid, f"DM-{iid.split('-', 1)[1]}", currency, amount, due_date))
        fate = rng.random()
        pid = f"{iid}-PAY"
        if fate < 0.35:
            self.pay(due + rng.randint(-6, 3), cid, iid, pid, currency)                      # on time
        elif fate < 0.50:
            self.pay(due + rng.randint(8, 40), cid, iid, pid, currency)                      # late, after reminders
        elif fate < 0.58:
            self.pay(due + 3, cid, iid, pid, currency, share=0.4)                            # in part, the rest never
        elif fate < 0.65:
            did = f"{iid}-DSP"
            self.add(due + 2, "portal", "dispute.opened", {"dispute_id": did, "invoice_id": iid, "reason": "quantity disputed"},
                     lambda: m.dispute_open(did, iid))
            self.add(due + 2 + rng.randint(8, 25), "portal", "dispute.resolved", {"dispute_id": did, "invoice_id": iid, "outcome": "merchant_won"},
                     lambda: m.dispute_resolve(did, iid))
            self.explain_at = self.explain_at or (due + 8, cid)  # its +7 step waits for the dispute
        elif fate < 0.73:
            promised = (START + dt.timedelta(days=due + 12)).date().isoformat()
            self.add(due + 5, "portal", "promise_to_pay.recorded", {"invoice_ids": [iid], "promised_date": promised},
                     lambda: m.promise([iid], promised))
            if rng.random() < 0.5:
                self.pay(due + 11, cid, iid, pid, currency)                                  # kept
        elif fate < 0.80:
            # A card that fails: attempt 2 (reported without `attempt`) fails too, attempt 3 succeeds.
            first = due - 1
            retry2 = first + delays[0]
            second = retry2 + 1
            retry3 = second + delays[1]
            self.failed(first, cid, iid, pid, currency, "insufficient_funds", True, attempt=1)
            self.failed(second, cid, iid, pid, currency, "insufficient_funds", True)
            self.pay(retry3 + 1, cid, iid, pid, currency)
        elif fate < 0.84:
            self.failed(due - 2, cid, iid, f"{pid}-X", currency, "stolen_card", True, attempt=1)  # hard decline: notice at once
            self.pay(due + 20, cid, iid, pid, currency)
        elif fate < 0.89:
            self.add(due - 1, "gateway", "payment.pending", {"payment_id": pid, "customer_id": cid, "currency": currency,
                                                             "amount": "?", "method": "ach", "initiated_at": "?", "invoice_ids": [iid]},
                     lambda: m.pending_payment(pid, cid, currency, [iid]))
            self.pay(due + 3, cid, iid, pid, currency, method="ach")
        elif fate < 0.92:
            self.pay(due - 2, cid, iid, pid, currency)
            self.add(due + 20, "gateway", "payment.refunded", {"payment_id": pid, "refund_id": f"{pid}-RF", "amount": "?"},
                     None)
        # else: never paid, walks to escalation

    def pay(self, day, cid, iid, pid, currency, share=1.0, method="card"):
        self.add(day, "gateway", "payment.succeeded", {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": "?",
                                                       "method": method, "received_at": "?", "allocations": [{"invoice_id": iid, "amount": "?"}],
                                                       "_share": share}, None)

    def failed(self, day, cid, iid, pid, currency, code, retryable, attempt=None):
        data = {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": "?", "method": "card", "failure_code": code,
                "retryable": retryable, "invoice_ids": [iid]}
        if attempt:
            data["attempt"] = attempt
        self.add(day, "gateway", "payment.failed", data, None)

    def materialise(self, type_, data, at):
        """Fills amounts from the model's state at the moment of playing; returns the model update."""
        m = self.model
        if type_ == "payment.succeeded":
            iid = data["allocations"][0]["invoice_id"]
            inv = m.invoices[iid]
            amount = inv["balance"] if data.pop("_share") == 1.0 else max(1, inv["balance"] * 2 // 5)
            if inv["status"] not in dunning_model.OPEN or amount <= 0 or data["payment_id"] in m.payments:
                return None
            data["amount"] = data["allocations"][0]["amount"] = money(amount, inv["currency"])
            data["received_at"] = at
            return lambda: m.pay(data["payment_id"], [(iid, amount)])
        if type_ == "payment.failed":
            inv = m.invoices[data["invoice_ids"][0]]
            data["amount"] = money(inv["amount"], inv["currency"])
            return lambda: m.failed(data["payment_id"], data["customer_id"], inv["currency"], inv["amount"], data["failure_code"],
                                    data["retryable"], data["invoice_ids"], dunning_model.instant(at), data.get("attempt"))
        if type_ == "payment.pending":
            inv = m.invoices[data["invoice_ids"][0]]
            data["amount"], data["initiated_at"] = money(inv["balance"], inv["currency"]), at
        if type_ == "payment.refunded":
            pid = data["payment_id"]
            apps = [a for a in m.applications if a[1] == pid]
            if not apps:
                return None
            back = max(1, apps[0][3] // 2)
            data["amount"] = money(back, m.invoices[apps[0][2]]["currency"])
            return lambda: m.refund(pid, back)
        return "keep"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    binary = os.environ.get("RECEIVABLESD_BIN", "receivablesd")
    policies = os.environ.get("RECEIVABLESD_POLICIES_FILE")
    prefix = f"dun{uuid.uuid4().hex[:6]}"
    story = Story(args.seed, prefix, policies)
    story.generate()
    publishers = {who: arclient.Publisher(role) for who, role in (("billing", "BILLING"), ("gateway", "GATEWAY"), ("portal", "PORTAL"))}
    portal = arclient.Portal()
    capture = arclient.Capture(bindings=[("ar.events", t) for t in DUNNING_TYPES])
    started = time.time()
    rows = collections.defaultdict(collections.Counter)   # local date -> counter of column
    notices_by_day = collections.Counter()
    reported = []
    passes = 0
    explain_text = None
    cursor = START.replace(hour=12, minute=0)  # the last pass run: passes follow each day's messages (12:30)
    for day in range(DAYS):
        at = rfc3339(START + dt.timedelta(days=day))
        played = 0
        for who, type_, data, apply in story.days.get(day, []):
            data = json.loads(json.dumps(data))
            update = story.materialise(type_, data, at)
            if update is None:
                continue  # nothing left to pay or refund
            if update == "keep":
                update = apply
            publishers[who].publish(arclient.event(type_, data, source="demo-dunning", subject=data.get("customer_id"), time_=at))
            before = len(story.model.out)
            update()
            notices_by_day[day] += sum(1 for e in story.model.out[before:] if e["type"] == "payment.failed_notice")
            played += 1
        if played:
            portal.request("account.summary.requested", {"customer_id": story.customers[0]}, timeout=60)  # applied up to here
        until = START.replace(hour=12, minute=0) + dt.timedelta(days=day + 1)
        status = subprocess.run([binary, "dunning", "tick", "--now", rfc3339(cursor + dt.timedelta(hours=1)), "--until", rfc3339(until),
                                 "--every", "1h", "--json"], capture_output=True, text=True)
        if status.returncode != 0:
            print(f"dunning tick failed: {status.stderr[-1500:]}")
            return 1
        moment = cursor + dt.timedelta(hours=1)
        while moment <= until:
            story.model.tick(moment)
            passes += 1
            moment += dt.timedelta(hours=1)
        cursor = until
        for line in status.stdout.splitlines():
            item = json.loads(line)
            if item["kind"] == "reminder" and item["customer_id"].startswith(prefix):
                column = "escalated" if item["type"] == "dunning.escalated" else f"L{item['level']}"
                rows[item["local_date"]][column] += 1
                reported.append(item)
            elif item["kind"] == "retry" and item["customer_id"].startswith(prefix) and item["outcome"] == "requested":
                rows[item["pass"][:10]]["retries"] += 1
                reported.append(item)
        if story.explain_at and story.explain_at[0] == day:
            explain_text = subprocess.run([binary, "dunning", "explain", story.explain_at[1], "--now", rfc3339(until)],
                                          capture_output=True, text=True).stdout
    elapsed = time.time() - started
    for day, count in notices_by_day.items():
        if count:
            rows[(START + dt.timedelta(days=day)).date().isoformat()]["notices"] += count

    columns = ["L1", "L2", "L3", "L4", "L5", "escalated", "retries", "notices"]
    print()
    print(f"Dunning: {DAYS} days of history ({START.date()} to {(START + dt.timedelta(days=DAYS - 1)).date()}), {len(story.customers)} customers,")
    print(f"ticked hourly with `receivablesd dunning tick --now` ({passes} passes in {elapsed:.0f} s, messages played through the broker)")
    print("=" * 100)
    print("standard policy: L1 -3d upcoming, L2 due, L3 +7d overdue, L4 +14d overdue, L5 +30d final notice, +45d escalated;")
    print("gentle policy (every 4th customer): L1 due, L2 +14d overdue, L3 +45d final notice. Days are the customers' local dates.")
    print()
    print(f"  {'DATE':<12}" + "".join(f"{c:>10}" for c in columns))
    totals = collections.Counter()
    for date in sorted(rows):
        totals.update(rows[date])
        print(f"  {date:<12}" + "".join(f"{(rows[date][c] or '.'):>10}" for c in columns))
    print(f"  {'TOTAL':<12}" + "".join(f"{totals[c]:>10}" for c in columns))

    expected = [e for e in story.model.out if prefix in json.dumps(e)]
    capture.wait(lambda ms: len([x for x in ms if prefix.encode() in x.body]) >= len(expected), timeout=60)
    capture.settle(quiet=1.5, timeout=30)
    mine = [x for x in capture.messages if prefix.encode() in x.body]
    ids = collections.Counter(x.json["id"] for x in mine)
    got = collections.Counter(canonical(captured(x)) for x in mine)
    want = collections.Counter(canonical(e) for e in expected)
    print()
    print(f"  published on ar.events: {len(mine)} dunning events ({sum(1 for n in ids.values() if n > 1)} ids seen twice)")
    agree = got == want
    print(f"  independent model (scripts/dunning_model.py): {len(expected)} events expected; "
          + ("the daemon's events are exactly these" if agree else f"DIFFERENT: {len(want - got)} missing, {len(got - want)} unexpected"))
    if not agree:
        for item in sorted(want - got)[:5]:
            print(f"    missing: {item}")
        for item in sorted(got - want)[:5]:
            print(f"    unexpected: {item}")
    if explain_text:
        print()
        print(f"  receivablesd dunning explain {story.explain_at[1]} (while its dispute is open):")
        for line in explain_text.splitlines():
            print(f"    {line}")
    for c in list(publishers.values()) + [portal, capture]:
        c.close()
    return 0 if agree and all(n == 1 for n in ids.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
