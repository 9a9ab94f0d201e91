"""Scenario 1: publish → row → event, in USD, JPY and KWD; account summary via the portal."""
import random
import sys

from common import Checks, arclient, capture, customer, invoice, money, payment, prefix, SOURCE, final_status

checks = Checks()
p = prefix("it1")
cid = f"{p}-C"
# Amounts generated per run; the USD/KWD ones end in zeros so trailing-zero rendering is checked.
usd1 = random.randint(100, 9000) * 100
usd2 = random.randint(100, 900000)
jpy = random.randint(1000, 900000)
kwd = random.randint(1, 900) * 1000 + 500
invoices = [(f"{p}-USD-1", "USD", usd1, "2026-03-01"), (f"{p}-USD-2", "USD", usd2, "2026-04-01"),
            (f"{p}-JPY-1", "JPY", jpy, "2026-03-15"), (f"{p}-KWD-1", "KWD", kwd, "2026-03-20")]
partial = random.randint(1, usd1 - 1)
credit_note = random.randint(1, 50000)

cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
billing.publish(customer(cid))
for iid, cur, minor, due in invoices:
    billing.publish(invoice(iid, cid, cur, minor, due))
ids = [i[0] for i in invoices]
cap.wait(lambda ms: all(final_status(cap, i) for i in ids) and
         sum(1 for m in cap.events("ledger.entry_posted") if m.data.get("customer_id") == cid) >= len(ids), timeout=60)

for iid, cur, minor, due in invoices:
    ev = final_status(cap, iid)
    checks.equal((ev.get("from"), ev.get("to")), (None, "open"), f"{iid} status_changed from/to")
    checks.equal(ev.get("balance"), money(minor, cur), f"{iid} status_changed balance")
    checks.equal(ev.get("amount"), money(minor, cur), f"{iid} status_changed amount")
    checks.equal(ev.get("currency"), cur, f"{iid} status_changed currency")
    ledgers = [m.data for m in cap.events("ledger.entry_posted") if m.data.get("reference") == iid
               or any(l.get("invoice_id") == iid for l in m.data.get("lines", []))]
    if checks.check(len(ledgers) == 1, f"{iid}: expected one ledger.entry_posted, got {len(ledgers)}"):
        entry = ledgers[0]
        checks.equal(entry.get("currency"), cur, f"{iid} ledger currency")
        debits = [l["debit"] for l in entry["lines"] if l["debit"] != money(0, cur)]
        credits = [l["credit"] for l in entry["lines"] if l["credit"] != money(0, cur)]
        checks.equal((debits, credits), ([money(minor, cur)], [money(minor, cur)]), f"{iid} ledger lines (decimal strings)")
for m in cap.events():
    if m.data and m.data.get("customer_id") == cid:
        checks.equal(m.json.get("source"), SOURCE, f"source of {m.routing_key}")

# A partial payment on USD-1 and a credit note with no invoice (→ unapplied credit, not netted).
gateway.publish(payment(f"{p}-P1", cid, "USD", partial, allocations=[(f"{p}-USD-1", partial)]))
billing.publish(arclient.event("credit_note.issued", {"credit_note_id": f"{p}-CN", "customer_id": cid, "currency": "USD",
                                                     "amount": money(credit_note, "USD")}, source="billing-it", subject=cid))
cap.wait(lambda ms: any(m.data.get("payment_id") == f"{p}-P1" for m in cap.events("payment.confirmed")) and
         any(m.data.get("customer_id") == cid and m.data.get("balance") == money(credit_note, "USD")
             for m in cap.events("credit_balance.changed")), timeout=30)

portal = arclient.Portal()
reply = portal.request("account.summary.requested", {"customer_id": cid}, expect_source=SOURCE)
props = portal.last_reply_properties
checks.equal(reply.get("type"), "account.summary.reply", "reply type")
data = reply.get("data", {})
checks.equal(data.get("customer_id"), cid, "reply customer_id")
expected_balance = {"USD": usd1 - partial + usd2, "JPY": jpy, "KWD": kwd}
expected_credit = {"USD": credit_note, "JPY": 0, "KWD": 0}
balances = {b["currency"]: b for b in data.get("balances", [])}
checks.equal(sorted(balances), sorted(expected_balance), "currencies in the summary")
for cur, minor in expected_balance.items():
    b = balances.get(cur, {})
    checks.equal(b.get("balance"), money(minor, cur), f"summary {cur} balance")
    checks.equal(b.get("unapplied_credit"), money(expected_credit[cur], cur), f"summary {cur} unapplied_credit")
    open_sum = sum(int(i["balance"].replace(".", "")) for i in data.get("open_invoices", []) if i["currency"] == cur)
    checks.equal(money(open_sum, cur), b.get("balance"), f"summary {cur}: sum of open invoice balances")
checks.equal(len(data.get("open_invoices", [])), 4, "open invoices in the summary")

checks.finish(prefix=p, customer_id=cid, correlation_id=props.correlation_id if props else None,
              invoices=[{"invoice_id": i, "currency": c, "amount_minor": m,
                         "balance_minor": m - (partial if i.endswith("USD-1") else 0)} for i, c, m, _ in invoices])
