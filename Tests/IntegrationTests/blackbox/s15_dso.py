"""Scenario 15: `receivablesd report dso` is the countback method over invoices dated by their
ISSUE date, whenever billing sent them. A backlog of three months' invoices is published today;
the expected DSO is computed here, independently, from the invoice dates and the receivable.

NOK is used by no other scenario, so the report's NOK section is this scenario's alone.
"""
import calendar
import datetime as dt
import json

from common import Checks, arclient, capture, cli, customer, final_status, invoice, payment, prefix

checks = Checks()
p = prefix("it15")
cid = f"{p}-C"
today = dt.datetime.now(dt.timezone.utc).date()


def month_back(day, n):
    year, month = day.year, day.month - n
    while month <= 0:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


m0, m1, m2 = month_back(today, 0), month_back(today, 1), month_back(today, 2)
len1 = calendar.monthrange(m1.year, m1.month)[1]
len2 = calendar.monthrange(m2.year, m2.month)[1]
# Sales: this month 4,000.00 (issued on the 1st), last month 5,000.00, the month before one
# hundred a day; the payment leaves half of that oldest month uncovered, so the countback ends
# exactly halfway through it.
invoices = [(f"{p}-I0", 400000, m0), (f"{p}-I1", 500000, m1.replace(day=10)), (f"{p}-I2", len2 * 10000, m2.replace(day=5))]
paid = len2 * 5000
receivable = sum(minor for _, minor, _ in invoices) - paid
expected_hundredths = today.day * 100 + len1 * 100 + len2 * 50

cap = capture()
billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")
billing.publish(customer(cid))
for iid, minor, issued in invoices:
    billing.publish(invoice(iid, cid, "NOK", minor, (issued + dt.timedelta(days=30)).isoformat(), issue=issued.isoformat()))
gateway.publish(payment(f"{p}-P", cid, "NOK", paid))
checks.check(cap.wait(lambda ms: any(m.data.get("payment_id") == f"{p}-P" for m in cap.events("payment.confirmed")), timeout=60),
             "the payment was not confirmed")

status, output = cli("report", "dso", "--format", "json", "--as-of", today.isoformat())
checks.equal(status, 0, f"report dso exit status ({output[-400:]})")
report = json.loads(next((line for line in output.splitlines() if line.startswith("{")), "{}"))
section = next((s for s in report.get("sections", []) if s.get("id") == "NOK"), None)
if checks.check(section is not None, f"no NOK section in {output[-400:]}"):
    total = next((r for r in section["rows"] if r.get("is_total")), {})
    expected = f"{expected_hundredths // 100}.{expected_hundredths % 100:02d}"
    checks.equal(total.get("days"), expected, "DSO days (countback over issue dates)")
    checks.check(f"receivable {receivable // 100}.{receivable % 100:02d}" in section.get("heading", ""),
                 f"receivable {receivable} not in heading {section.get('heading')!r}")
checks.finish(expected_hundredths=expected_hundredths, receivable_minor=receivable)
