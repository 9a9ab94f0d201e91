"""Scenario 10: a 140-day dunning history in 2031, ticked hourly with `dunning tick --now`: grouped
reminders per customer, step, currency and local day; partial payments, a refund reopening a paid
invoice, void and write-off; a dispute and its resolution; a kept and a broken promise; pending
payments (named invoices and a whole currency); failed payments retried on the policy's delays
(a success cancelling the rest, a hard decline, the last failure); the minimum balance; customers
at UTC-10 (Honolulu), UTC+14 (Kiritimati), across the New York daylight-saving change, and with an
unknown time zone (UTC used). The captured events must equal the independent model
(scripts/dunning_model.py) exactly, with their pass instants; `dunning explain` and the account
summary must show the holds and flags."""
from common import Checks, cli, prefix
from dunning_common import Timeline, instant

checks = Checks()
p = prefix("it10")
START = instant("2031-01-01T00:00:00Z")
END = instant("2031-05-21T00:00:00Z")
t = Timeline(checks, p, START)
c = {k: f"{p}-{k}" for k in "ABCDEFGH"}
i = lambda name: f"{p}-{name}"  # noqa: E731

# Customers and invoices, all known before the first pass.
at0 = "2031-01-01T00:00:00Z"
t.customer(c["A"])                                    # no time zone: UTC
t.customer(c["B"], "Pacific/Honolulu")                # UTC-10
t.customer(c["C"], "Pacific/Kiritimati")              # UTC+14
t.customer(c["D"], "America/New_York")                # DST starts 2031-03-09
t.customer(c["E"], "Europe/Berlin", policy="gentle")  # steps 0/+14/+45, retries after 2, 5, 10 days
t.customer(c["F"])
t.customer(c["G"])                                    # below the USD 5.00 minimum until a second invoice
t.customer(c["H"], "Mars/Olympus")                    # unknown: UTC
for name, cust, cur, amount, due in [
    ("A1", "A", "USD", "120.00", "2031-01-20"), ("A2", "A", "USD", "80.00", "2031-01-20"), ("A3", "A", "EUR", "50.00", "2031-01-20"),
    ("A5", "A", "USD", "60.00", "2031-01-20"),
    ("B1", "B", "USD", "200.00", "2031-02-01"), ("B2", "B", "USD", "40.00", "2031-02-01"), ("B3", "B", "USD", "15.00", "2031-02-01"),
    ("C1", "C", "USD", "300.00", "2031-03-01"), ("C2", "C", "USD", "150.00", "2031-03-01"),
    ("D1", "D", "USD", "500.00", "2031-03-03"), ("D2", "D", "USD", "60.00", "2031-03-09"),
    ("E1", "E", "USD", "250.00", "2031-01-15"), ("E2", "E", "USD", "90.00", "2031-02-10"), ("E3", "E", "USD", "70.00", "2031-04-01"),
    ("F1", "F", "USD", "400.00", "2031-02-15"), ("F2", "F", "USD", "100.00", "2031-02-15"),
    ("G1", "G", "USD", "3.00", "2031-03-15"),
    ("H1", "H", "USD", "20.00", "2031-01-10"), ("H2", "H", "JPY", "5000", "2031-01-10"),
]:
    t.invoice(i(name), c[cust], cur, amount, due, at0)

# The timeline: (instant at minute 30, action). Passes run on the hour.
events = [
    ("2031-01-10T12:30:00Z", lambda at: t.failed(i("pE1"), c["E"], "USD", "250.00", "insufficient_funds", True, [i("E1")], at, attempt=1)),
    # the gateway retried (attempt 2, requested at 01-12 13:00) and reports it failed, without `attempt`
    ("2031-01-12T14:30:00Z", lambda at: t.failed(i("pE1"), c["E"], "USD", "250.00", "insufficient_funds", True, [i("E1")], at)),
    ("2031-01-18T09:30:00Z", lambda at: t.pay(i("pE1"), c["E"], "USD", [(i("E1"), "250.00")], at)),  # cancels retry 3
    ("2031-01-21T10:30:00Z", lambda at: t.void(i("A5"), at)),
    ("2031-01-24T10:30:00Z", lambda at: t.pay(i("pA1"), c["A"], "USD", [(i("A1"), "20.00")], at)),
    ("2031-01-28T10:30:00Z", lambda at: t.pay(i("pA2"), c["A"], "USD", [(i("A2"), "80.00")], at)),
    ("2031-02-01T08:30:00Z", lambda at: t.failed(i("pE2"), c["E"], "USD", "90.00", "Stolen_Card", True, [i("E2")], at)),
    ("2031-02-03T20:30:00Z", lambda at: t.dispute(i("D-B1"), i("B1"), at)),
    ("2031-02-10T10:30:00Z", lambda at: t.write_off(i("B3"), at)),
    ("2031-02-14T09:30:00Z", lambda at: t.pending(i("pF1"), c["F"], "USD", "400.00", [i("F1")], at)),
    ("2031-02-14T09:45:00Z", lambda at: t.pending(i("pF2"), c["F"], "USD", "100.00", [], at)),
    ("2031-02-17T09:30:00Z", lambda at: t.pay(i("pF1"), c["F"], "USD", [(i("F1"), "400.00")], at, method="ach")),
    ("2031-02-20T09:30:00Z", lambda at: t.failed(i("pF2"), c["F"], "USD", "100.00", "R01", False, [], at)),
    ("2031-02-20T20:30:00Z", lambda at: t.resolve(i("D-B1"), i("B1"), "withdrawn", at)),
    ("2031-02-25T10:30:00Z", lambda at: t.refund(i("pA2"), i("rA2"), "USD", "30.00", at)),
    ("2031-02-27T00:30:00Z", lambda at: t.promise([i("C1")], "2031-03-05", at)),   # broken: paused through 03-08 (grace 3)
    ("2031-02-27T00:40:00Z", lambda at: t.promise([i("C2")], "2031-03-04", at)),
    ("2031-03-03T05:30:00Z", lambda at: t.pay(i("pC2"), c["C"], "USD", [(i("C2"), "150.00")], at)),  # kept
    ("2031-03-20T08:30:00Z", lambda at: t.failed(i("pE3"), c["E"], "USD", "70.00", "insufficient_funds", True, [i("E3")], at, attempt=1)),
    ("2031-03-22T10:30:00Z", lambda at: t.failed(i("pE3"), c["E"], "USD", "70.00", "insufficient_funds", True, [i("E3")], at, attempt=2)),
    ("2031-03-27T12:30:00Z", lambda at: t.failed(i("pE3"), c["E"], "USD", "70.00", "insufficient_funds", True, [i("E3")], at, attempt=3)),
    ("2031-04-01T10:30:00Z", lambda at: t.invoice(i("G2"), c["G"], "USD", "10.00", "2031-04-20", at)),
    ("2031-04-06T14:30:00Z", lambda at: t.failed(i("pE3"), c["E"], "USD", "70.00", "insufficient_funds", True, [i("E3")], at, attempt=4)),
]
def probe(at):
    """Mid-history views: `dunning explain` names the holds; the summary carries the flags."""
    if at.startswith("2031-02-15"):
        status, out = cli("dunning", "explain", c["F"], "--now", at)
        checks.check(status == 0 and "payment_pending" in out and i("pF1") in out and i("pF2") in out,
                     f"dunning explain {c['F']} does not show the pending payments holding F1/F2:\n{out}")
    if at.startswith("2031-02-10"):
        status, out = cli("dunning", "explain", c["B"], "--now", at)
        checks.check(status == 0 and "disputed" in out and i("D-B1") in out, f"dunning explain {c['B']} does not show the dispute:\n{out}")
        data = t.summary(c["B"])
        b1 = [inv for inv in data.get("open_invoices", []) if inv["invoice_id"] == i("B1")]
        checks.check(bool(b1) and b1[0].get("disputed") is True and b1[0].get("dunning_level") == 2,
                     f"summary of {c['B']}: B1 should be disputed at dunning level 2: {b1}")
    if at.startswith("2031-03-01"):
        data = t.summary(c["C"])
        c1 = [inv for inv in data.get("open_invoices", []) if inv["invoice_id"] == i("C1")]
        promise = c1[0].get("promise_to_pay") if c1 else None
        checks.check(bool(promise) and promise.get("promised_date") == "2031-03-05" and promise.get("paused_until") == "2031-03-08",
                     f"summary of {c['C']}: C1's promise to pay: {promise}")


events += [("2031-02-10T12:15:00Z", probe), ("2031-02-15T12:15:00Z", probe), ("2031-03-01T12:15:00Z", probe)]

t.sync()
for at, action in sorted(events, key=lambda e: e[0]):
    t.advance(instant(at))
    action(at)
    t.sync()
t.advance(END)

messages, expected = t.compare()
kinds = {}
for e in expected:
    kinds[e["type"]] = kinds.get(e["type"], 0) + 1
# The history must exercise what it claims to (a guard against a vacuous comparison).
for kind, least in [("reminder.upcoming", 5), ("reminder.due", 5), ("reminder.overdue", 8), ("reminder.final_notice", 4),
                    ("dunning.escalated", 4), ("payment.retry_requested", 4), ("payment.failed_notice", 3)]:
    checks.check(kinds.get(kind, 0) >= least, f"the model expects only {kinds.get(kind, 0)} {kind} (at least {least} intended)")
# Time zones: the first pass of the customer's local day sends, whatever the UTC date.
first_due = {line["invoice_id"]: m.json["time"] for m in messages if m.routing_key == "reminder.due" for line in m.json["data"]["invoices"]}
checks.equal(first_due.get(i("B2"), "")[:19], "2031-02-01T10:00:00", "Honolulu (UTC-10) due reminder at local midnight")
checks.equal(first_due.get(i("D1"), "")[:19], "2031-03-03T05:00:00", "New York due reminder at local midnight (EST)")
overdue_d1 = sorted(m.json["time"] for m in messages if m.routing_key == "reminder.overdue" and i("D1") in m.body.decode())
checks.equal([x[:19] for x in overdue_d1], ["2031-03-10T04:00:00", "2031-03-17T04:00:00"], "New York overdue reminders after DST (EDT)")
upcoming_c = sorted(m.json["time"] for m in messages if m.routing_key == "reminder.upcoming" and i("C1") in m.body.decode())
checks.equal([x[:19] for x in upcoming_c], ["2031-02-25T10:00:00"], "Kiritimati (UTC+14) upcoming reminder on the local day before UTC")
t.close()
checks.finish(prefix=p, passes=t.passes, events=len(messages), expected=len(expected), kinds=kinds,
              customers=list(c.values()))
