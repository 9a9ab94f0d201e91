"""Scenario 3: every bad-input class → its reason code in the dead letter, body byte-identical;
afterwards the daemon still processes a valid message."""
import json
import random
import uuid

from common import Checks, arclient, capture, customer, invoice, money, prefix, status_events

checks = Checks()
p = prefix("it3")
a, b = f"{p}-A", f"{p}-B"
inv_a = f"{p}-INV-A"
cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
portal = arclient.Publisher("PORTAL")

# Valid background: two customers, an invoice of A (USD).
billing.publish(customer(a))
billing.publish(customer(b))
billing.publish(invoice(inv_a, a, "USD", random.randint(1000, 99999), "2026-06-01"))
cap.wait(lambda ms: status_events(cap, inv_a), timeout=30)


def inv(suffix, **changes):
    body = invoice(f"{p}-{suffix}", a, "USD", 12345, "2026-06-01", id_=f"{p}-{suffix}")
    body["data"].update(changes)
    return body


def pay(suffix, **changes):
    body = arclient.event("payment.succeeded", {"payment_id": f"{p}-{suffix}", "customer_id": a, "currency": "USD", "amount": "10.00",
                                                "method": "card", "received_at": "2026-02-01T10:00:00Z"},
                          source="gateway-it", subject=a, id_=f"{p}-{suffix}")
    body["data"].update(changes)
    return body


deep = {"x": p}
for _ in range(200):
    deep = {"n": deep}
too_deep = inv("deep")
too_deep["data"]["po_number"] = "deep"
too_deep["nested"] = deep
big = inv("big", po_number="x" * 70_000)
no_number = inv("schema")
del no_number["data"]["number"]
number_amount = json.dumps(inv("num")).replace('"amount": "123.45"', '"amount": 123.45').encode()
card = pay("card", card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030})

# (name, publisher, body, routing key, expected reason, publish kwargs)
cases = [
    ("not_json", billing, f"{{not json {p}".encode(), "invoice.issued", "not_json", {}),
    # A NUL in AMQP properties must not break the dead-letter record (jsonb refuses U+0000).
    ("nul_in_properties", billing, f"{{broken {p} nul".encode(), "customer.upserted", "not_json",
     {"content_type": "application/\x00json", "correlation_id": f"{p}\x00corr"}),
    ("not_cloudevent", billing, json.dumps({"hello": p, "data": {"x": 1}}).encode(), "customer.upserted", "not_cloudevent", {}),
    ("unknown_type", billing, arclient.event("invoice.teleported", {"invoice_id": p}, source="billing-it", id_=f"{p}-type"),
     "invoice.teleported", "unknown_type", {}),
    ("schema_violation", billing, no_number, None, "schema_violation", {}),
    ("amount_not_string", billing, number_amount, "invoice.issued", "amount_not_string", {}),
    ("unknown_currency", billing, inv("cur", currency="XYZ"), None, "unknown_currency", {}),
    ("wrong_minor_digits", billing, inv("digits", amount="12.345"), None, "wrong_minor_digits", {}),
    ("body_too_large", billing, big, None, "body_too_large", {}),
    ("too_deep", billing, too_deep, None, "too_deep", {}),
    ("foreign_reference", billing, arclient.event("credit_note.issued", {"credit_note_id": f"{p}-CN", "customer_id": b, "currency": "USD",
                                                                         "amount": "1.00", "invoice_id": inv_a},
                                                  source="billing-it", subject=b, id_=f"{p}-foreign"), None, "foreign_reference", {}),
    ("forbidden_publisher", billing, pay("forbidden"), None, "forbidden_publisher", {}),
    ("missing_user_id", gateway, pay("nouser"), None, "forbidden_publisher", {"user_id": None}),
    ("card_data_present", gateway, card, None, "card_data_present", {}),
    ("invalid_reply_to", portal, arclient.event("account.summary.requested", {"customer_id": a}, source="portal-it", subject=a,
                                                id_=f"{p}-replyto"), None, "invalid_reply_to",
     {"reply_to": "ar.inbound.work", "correlation_id": f"{p}-corr"}),
    ("currency_mismatch", billing, arclient.event("invoice.adjusted", {"invoice_id": inv_a, "amount": "5.00", "reason": "x", "currency": "EUR"},
                                                  source="billing-it", id_=f"{p}-curmis"), None, "currency_mismatch", {}),
]
sent = {}
for name, publisher, body, key, reason, kwargs in cases:
    raw = arclient.encode(body)
    checks.check(p.encode() in raw, f"{name}: test body does not carry the run prefix")
    sent[name] = raw
    publisher.publish(raw, routing_key=key or body["type"], **kwargs)
checks.check(len(sent["body_too_large"]) > 69_000, "body_too_large case is not over 69 KB")
checks.check(b'"amount": 123.45' in sent["amount_not_string"], "amount_not_string case has no numeric amount")


def redacted_card_letter(m, raw):
    """A card_data_present dead letter keeps the message but never the card number (PCI DSS):
    same event id, the number replaced, and a header saying the body was redacted."""
    return (m.reason == "card_data_present" and b"4242424242424242" not in m.body
            and json.loads(m.body).get("id") == json.loads(raw).get("id") and bool(m.headers.get("x-body-redacted")))


def matched():
    dls = [m for m in cap.dead_letters() if p.encode() in m.body]
    return {name: [m for m in dls if (redacted_card_letter(m, raw) if name == "card_data_present" else m.body == raw)]
            for name, raw in sent.items()}


try:
    cap.wait(lambda ms: all(matched().values()), timeout=60)
except TimeoutError:
    pass
cap.settle(quiet=1.5, timeout=10)
found = matched()
for name, publisher, body, key, reason, kwargs in cases:
    hits = found[name]
    if not hits:
        near = [m for m in cap.dead_letters() if p.encode() in m.body and isinstance(body, dict) and m.body.find(body.get("id", "\0").encode()) >= 0]
        checks.check(False, f"{name}: no dead letter with the byte-identical body"
                     + (f" (one with the same id but a different body, reason {near[0].reason})" if near else ""))
        continue
    checks.equal(len(hits), 1, f"{name}: dead letters")
    checks.equal(hits[0].reason, reason, f"{name}: x-rejection-reason")
    detail = hits[0].headers.get("x-rejection-detail")
    checks.check(bool(detail), f"{name}: empty x-rejection-detail")
    checks.check(b"4242424242424242" not in (detail or b"" if isinstance(detail, bytes) else (detail or "").encode()),
                 f"{name}: detail leaks the card number")
# Nothing of A changed by the rejected adjustment / credit note.
checks.equal([e["to"] for e in status_events(cap, inv_a)], ["open"], "status changes of the invoice after the rejections")

# Still alive and not stalled: a valid message after all of that is applied.
after = f"{p}-AFTER"
billing.publish(invoice(after, a, "JPY", 5000, "2026-07-01"))
cap.wait(lambda ms: status_events(cap, after), timeout=30)
checks.finish(prefix=p, cases=[c[0] for c in cases], after_invoice=after)
