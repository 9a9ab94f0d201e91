"""Scenario 12: payment-history pages while new payments arrive: no item skipped, none repeated.

A customer has N payments (confirmed before the first page is asked for). The portal pages
through with a small limit; between every two pages new payments of the same customer are
booked (and confirmed) with received_at both newer and OLDER than the page boundary. Checks: every one of
the N payments appears exactly once; no payment appears twice; the order is strictly newest
first by (received_at, booking order); a payment booked after the first page is not part of this
traversal (the horizon is in the cursor), and a fresh traversal afterwards sees all of them once.
"""
import datetime
import random

from common import Checks, arclient, capture, customer, prefix, SOURCE, money

checks = Checks()
p = prefix("it12")
cid = f"{p}-C"
N, LIMIT = 40, 7
base = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def pay(pid, minutes, amount=1000):
    at = (base + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return arclient.event("payment.succeeded", {"payment_id": pid, "customer_id": cid, "currency": "USD", "amount": money(amount, "USD"),
                                                "method": "ach", "received_at": at}, source="gateway-it", subject=cid)


cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
billing.publish(customer(cid))
initial = [f"{p}-P{i:03d}" for i in range(N)]
# Some share a received_at, so the tie-break (booking order) is exercised.
for i, pid in enumerate(initial):
    gateway.publish(pay(pid, (i // 3) * 10))
cap.wait(lambda ms: {m.data.get("payment_id") for m in cap.events("payment.confirmed")} >= set(initial), timeout=90)

portal = arclient.Portal()
rng = random.Random(7)
extra = []
seen, order, pages = [], [], 0
reply = first = portal.request("payment_history.requested", {"customer_id": cid, "limit": LIMIT}, expect_source=SOURCE)
while True:
    pages += 1
    data = reply.get("data", {})
    checks.check("error" not in data, f"page {pages}: error {data.get('error')}")
    for item in data.get("payments", []):
        seen.append(item["payment_id"])
        order.append(item["received_at"])
    cursor = data.get("next_cursor")
    if not cursor or pages > 100:
        break
    checks.equal(data.get("as_known_at"), first.get("data", {}).get("as_known_at"), f"page {pages} keeps the first page's horizon")
    # Booked between two pages: older than everything, just past the boundary, in the middle, newer.
    boundary = (datetime.datetime.fromisoformat(order[-1].replace("Z", "+00:00")) - base).total_seconds() // 60
    batch = []
    for minutes in (-500, boundary - 1, boundary + 1, 10_000):
        pid = f"{p}-X{len(extra):03d}"
        extra.append(pid)
        batch.append(pid)
        gateway.publish(pay(pid, int(minutes)))
    cap.wait(lambda ms: {m.data.get("payment_id") for m in cap.events("payment.confirmed")} >= set(batch), timeout=60)
    reply = portal.request("payment_history.requested", {"customer_id": cid, "limit": LIMIT, "cursor": cursor}, expect_source=SOURCE)

checks.equal(len(seen), len(set(seen)), "no payment repeated")
checks.equal(set(seen) - set(initial), set(), "no payment booked after the first page in this traversal")
checks.equal(set(initial) - set(seen), set(), "no payment skipped")
checks.check(all(order[i] >= order[i + 1] for i in range(len(order) - 1)), "newest first by received_at")
checks.check(pages >= N // LIMIT, f"paged ({pages} pages)")

# A traversal started now sees every payment once.
cap.wait(lambda ms: {m.data.get("payment_id") for m in cap.events("payment.confirmed")} >= set(initial) | set(extra), timeout=90)
everything, cursor = [], None
for _ in range(100):
    request = {"customer_id": cid, "limit": 25}
    if cursor:
        request["cursor"] = cursor
    data = portal.request("payment_history.requested", request, expect_source=SOURCE).get("data", {})
    everything += [x["payment_id"] for x in data.get("payments", [])]
    cursor = data.get("next_cursor")
    if not cursor:
        break
checks.equal(sorted(everything), sorted(initial + extra), "a fresh traversal sees every payment exactly once")

checks.finish(prefix=p, customer_id=cid, pages=pages)
