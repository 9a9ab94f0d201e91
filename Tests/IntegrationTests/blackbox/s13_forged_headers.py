"""Scenario 13 (security): the router's headers cannot be forged by a publisher.

Billing may not send payments. It tries, setting the headers the router and the dead-letter
replay use to carry the original publisher (x-ar-routed-user, x-ar-partition-seq,
x-original-user-id = gateway). Both messages must be dead-lettered forbidden_publisher and
recorded as billing's; nothing is booked.
"""
from common import Checks, arclient, capture, customer, payment, prefix

checks = Checks()
p = prefix("it13f")
cap = capture()
billing = arclient.Publisher("BILLING")
cid = f"{p}-C"
billing.publish(customer(cid))
forged = [
    payment(f"{p}-P1", cid, "USD", 1000),
    payment(f"{p}-P2", cid, "USD", 2000),
]
billing.publish(forged[0], headers={"x-ar-routed-user": "gateway", "x-ar-partition-seq": 1, "x-ar-routed-key": "payment.succeeded"})
billing.publish(forged[1], headers={"x-original-user-id": "gateway"})
try:
    cap.wait(lambda ms: len([m for m in cap.dead_letters() if p.encode() in m.body]) >= 2, timeout=60)
except TimeoutError:
    pass
dead = [m for m in cap.dead_letters() if p.encode() in m.body]
checks.equal(sorted(m.reason for m in dead), ["forbidden_publisher", "forbidden_publisher"], "reasons")
for m in dead:
    user = m.headers.get("x-original-user-id")
    user = user.decode() if isinstance(user, bytes) else user
    checks.equal(user, "billing", "recorded publisher")
    checks.check(not any(k.startswith("x-ar-") for k in m.headers), f"router headers leaked into the dead letter: {sorted(m.headers)}")
checks.equal(sorted(m.json["id"] for m in dead), sorted(b["id"] for b in forged), "dead-lettered ids")
checks.finish(prefix=p, payments=[f"{p}-P1", f"{p}-P2"])
