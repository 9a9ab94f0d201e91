"""Scenario 14a (issue 14, SPEC section 2): a payment is never refused for a descriptive label.

A gateway publishes payment.succeeded and payment.pending with the method labels real gateways send
(Stripe, Adyen, Braintree/PayPal, Square, GoCardless, Mollie, Checkout.com), a few unknown ones and
card brands outside the former closed list. Every payment must be applied (balances equal the
independent model in common.Books), its payment.confirmed must carry the method exactly as sent (and
the family for known ones), pending payments must show in the account summary, and nothing may be
dead-lettered.
"""
import random

from common import Books, Checks, arclient, capture, customer, invoice, mine, money, prefix, status_events

DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}  # the currencies of this scenario



# (label as the gateway sends it, currency, expected family or None for a label the daemon cannot know)
SUCCEEDED = [
    ("ach_debit", "USD", "bank_debit"), ("us_bank_account", "USD", "bank_debit"), ("link", "USD", "wallet"),
    ("apple_pay", "USD", "wallet"), ("google_pay", "USD", "wallet"), ("venmo", "USD", "wallet"),
    ("afterpay_clearpay", "USD", "buy_now_pay_later"), ("CARD", "USD", "card"), ("BANK_ACCOUNT", "USD", "bank_debit"),
    ("paypal", "EUR", "wallet"), ("klarna", "EUR", "buy_now_pay_later"), ("giropay", "EUR", "bank_transfer"),
    ("ideal", "EUR", "bank_transfer"), ("bancontact", "EUR", "debit_card"), ("sofort", "EUR", "bank_transfer"),
    ("sepa_debit", "EUR", "bank_debit"), ("directEbanking", "EUR", "bank_transfer"), ("paywithgoogle", "EUR", "wallet"),
    ("bacs_debit", "GBP", "bank_debit"), ("pay_by_bank", "GBP", "bank_transfer"), ("konbini", "JPY", "cash"),
    ("gateway-specific method 7", "USD", None), ("Pago Fácil", "EUR", None), ("crypto", "USD", "other"),
]
PENDING = [("us_bank_account", "USD"), ("ach_debit", "USD"), ("bacs_debit", "GBP"), ("sepa_core", "EUR"), ("becs_nz", "EUR"),
           ("some new rail", "USD")]

checks = Checks()
p = prefix("it14a")
cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
customers = {currency: f"{p}-C-{currency}" for currency in DIGITS}
models = {currency: Books(currency) for currency in DIGITS}
for currency, cid in customers.items():
    billing.publish(customer(cid))

expected_confirmed = {}
invoices = []
for n, (label, currency, family) in enumerate(SUCCEEDED):
    cid, model = customers[currency], models[currency]
    iid = f"{p}-I{n}"
    unit = 10 ** DIGITS[currency]
    amount = random.randint(50, 5000) * unit + (random.randint(0, unit - 1) if unit > 1 else 0)
    due = f"2026-0{1 + n % 9}-15"
    billing.publish(invoice(iid, cid, currency, amount, due))
    model.issue(iid, amount, due)
    invoices.append((iid, currency))
    # Half pay their invoice explicitly (some partly), half are on account (oldest due first).
    paid = amount if n % 3 else random.randint(1, amount)
    pid = f"{p}-P{n}"
    data = {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": money(paid, currency), "method": label,
            "received_at": "2026-03-14T09:26:50Z", "gateway_reference": f"gw-{n}"}
    explicit = [(iid, paid)] if n % 2 == 0 else []
    if explicit:
        data["allocations"] = [{"invoice_id": iid, "amount": money(paid, currency)}]
    if n % 5 == 0:
        data["card"] = {"token": f"tok_{n}", "brand": random.choice(["cartes_bancaires", "eftpos_au", "American Express", "rupay"]), "last4": "4242"}
    gateway.publish(arclient.event("payment.succeeded", data, source="gateway-it", subject=cid))
    allocations, rest = model.receive(pid, paid, explicit)
    expected_confirmed[pid] = (label, family, [(i, money(a, currency), money(b, currency)) for i, a, b in allocations], money(rest, currency))

pending_total = {currency: 0 for currency in DIGITS}
for n, (label, currency) in enumerate(PENDING):
    cid = customers[currency]
    amount = random.randint(100, 900) * 10 ** DIGITS[currency]
    pending_total[currency] += amount
    gateway.publish(arclient.event("payment.pending", {
        "payment_id": f"{p}-PP{n}", "customer_id": cid, "currency": currency, "amount": money(amount, currency), "method": label,
        "initiated_at": "2026-03-14T09:00:00Z", "expected_settlement_date": "2026-03-18"}, source="gateway-it", subject=cid))

cap.wait(lambda ms: sum(1 for m in cap.events("payment.confirmed") if m.data.get("payment_id", "").startswith(p)) >= len(SUCCEEDED),
         timeout=60)
cap.settle(quiet=1.5, timeout=30)

confirmed = {m.data["payment_id"]: m.data for m in cap.events("payment.confirmed") if m.data.get("payment_id", "").startswith(p)}
checks.equal(sorted(confirmed), sorted(expected_confirmed), "payments confirmed")
for pid, (label, family, allocations, rest) in expected_confirmed.items():
    data = confirmed.get(pid, {})
    checks.equal(data.get("method"), label, f"{pid} method kept as sent")
    checks.equal(data.get("method_family"), family, f"{pid} method_family of {label!r}")
    checks.equal([(a["invoice_id"], a["amount"], a["invoice_balance"]) for a in data.get("allocations", [])], allocations, f"{pid} allocations")
    checks.equal(data.get("unapplied_amount"), rest, f"{pid} unapplied_amount")
for iid, currency in invoices:
    # A payment that leaves an invoice partially paid changes no status; the balances are checked
    # in the database by the Swift driver (and in the summaries below).
    last = status_events(cap, iid)[-1] if status_events(cap, iid) else {}
    checks.equal(last.get("to"), models[currency].status(iid), f"{iid} final status")
checks.equal([m.reason for m in mine(cap.dead_letters(), p)], [], "dead letters (no valid payment may be refused)")

portal = arclient.Portal()
import common  # noqa: E402
for currency, cid in customers.items():
    reply = portal.request("account.summary.requested", {"customer_id": cid}, expect_source=common.SOURCE)
    rows = [b for b in reply["data"].get("balances", []) if b["currency"] == currency]
    model = models[currency]
    checks.equal((rows[0]["balance"], rows[0]["unapplied_credit"], rows[0]["pending"]) if rows else (money(0, currency),) * 3,
                 (money(model.balance(), currency), money(model.credit_balance(), currency), money(pending_total[currency], currency)),
                 f"{currency} summary balance/credit/pending")

checks.finish(prefix=p, labels=[label for label, _, _ in SUCCEEDED] + [label for label, _ in PENDING],
              payments=[{"payment_id": pid, "method": label, "known": family is not None}
                        for pid, (label, family, _, _) in expected_confirmed.items()],
              invoices=[{"invoice_id": iid, "balance_minor": models[c].invoices[iid]["balance"], "status": models[c].status(iid)}
                        for iid, c in invoices])
