"""Scenario 13: the reference portal page, the HTML statement and the HTML report, rendered in a
real headless browser (Debian's chromium), checked for the numbers that must be on them.

Usage: s13_portal_browser.py PORTAL_URL WORKDIR. The customer's name is an attack (markup and
quotes): it must arrive as text, never as an element.
"""
import datetime
import html.parser
import os
import shutil
import subprocess
import sys
import urllib.parse

from common import Books, Checks, arclient, capture, cli, customer, invoice, money, payment, prefix

checks = Checks()
portal_url, workdir = sys.argv[1].rstrip("/"), sys.argv[2]
p = prefix("it13")
cid = f"{p}-C"
name = f'<img src=x onerror="alert(1)"> & "Q" {p}'
today = datetime.datetime.now(datetime.timezone.utc).date()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Elements(html.parser.HTMLParser):
    """Text of every element with an id, and the tag names seen (to prove nothing was injected)."""

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.tags, self.classes = [], {}, [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.stack.append((tag, attrs.get("id"), attrs.get("class")))
        for _, ident, _ in self.stack:
            if ident:
                self.text.setdefault(ident, "")

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, ident, _ in self.stack:
            if ident:
                self.text[ident] = self.text.get(ident, "") + " " + data
        if self.stack and self.stack[-1][2]:
            key = (next((i for _, i, _ in reversed(self.stack) if i), None), self.stack[-1][2])
            self.classes.setdefault(key, []).append(data.strip())


def render(url):
    """The DOM after chromium loaded and laid out the page."""
    completed = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--user-data-dir={workdir}/chromium-profile", "--dump-dom", url],
                               capture_output=True, text=True, timeout=90)
    if completed.returncode != 0 or "<html" not in completed.stdout:
        checks.check(False, f"chromium failed on {url}: {completed.returncode} {completed.stderr[-400:]}")
        return Elements()
    parsed = Elements()
    parsed.feed(completed.stdout)
    return parsed


def text(elements, ident):
    return " ".join(elements.text.get(ident, "").split())


if not CHROMIUM:
    checks.check(False, "chromium is not installed (scripts/services/deps.sh installs Debian's chromium)")
    checks.finish(prefix=p)

cap = capture()
billing = arclient.Publisher("BILLING")
gateway = arclient.Publisher("GATEWAY")
billing.publish(customer(cid, name=name))
model = Books("USD")
invoices = [(f"{p}-I1", 12345, (today + datetime.timedelta(days=10)).isoformat()),
            (f"{p}-I2", 50000, (today - datetime.timedelta(days=12)).isoformat()),
            (f"{p}-I3", 7777, (today - datetime.timedelta(days=75)).isoformat())]
for iid, amount, due in invoices:
    billing.publish(invoice(iid, cid, "USD", amount, due, number=f"N<{iid[-2:]}>"))
    model.issue(iid, amount, due)
payments = [f"{p}-P{i:02d}" for i in range(12)]
for pid in payments:
    gateway.publish(payment(pid, cid, "USD", 1000))
    model.receive(pid, 1000)
cap.wait(lambda ms: {m.data.get("payment_id") for m in cap.events("payment.confirmed")} >= set(payments), timeout=90)

# --- the portal page ---------------------------------------------------------------------------
base = f"{portal_url}/customers/{urllib.parse.quote(cid, safe='')}?from={today.isoformat()}&to={today.isoformat()}"
page = render(base)
checks.equal(text(page, "customer-name"), " ".join(name.split()), "the customer's name, as text")
checks.check(not any(tag == "img" for tag, _ in page.tags), "no element injected by the customer's name")
checks.equal(page.classes.get(("balance-USD", "money balance")), [money(model.balance(), "USD")], "balance on the page")
for iid, amount, due in invoices:
    row = text(page, f"invoice-{iid}")
    if model.status(iid) == "paid":
        checks.check(f"invoice-{iid}" not in page.text, f"paid invoice {iid} is not listed as open")
    else:
        checks.check(money(model.invoices[iid]["balance"], "USD") in row and model.status(iid) in row and f"N<{iid[-2:]}>" in row,
                     f"invoice row {iid}: {row}")
closing = page.classes.get(("statement-USD", "money closing"))
checks.equal(closing, [money(model.balance() - model.credit_balance(), "USD")], "statement closing on the page")
shown = [ident[len("payment-"):] for ident in page.text if ident.startswith("payment-")]
checks.equal(len(shown), 10, "the first page of payments shows ten")
older = next((attrs.get("href") for tag, attrs in page.tags if tag == "a" and attrs.get("id") == "older"), None)
if checks.check(older is not None, "a link to older payments"):
    second = render(portal_url + older)
    rest = [ident[len("payment-"):] for ident in second.text if ident.startswith("payment-")]
    checks.equal(sorted(shown + rest), sorted(payments), "both pages together show every payment once")

# --- the printable statement (rendered by the daemon, served through the portal) ---------------
statement = render(f"{portal_url}/customers/{urllib.parse.quote(cid, safe='')}/statement.html?from={today.isoformat()}&to={today.isoformat()}")
checks.equal(text(statement, "customer-name"), " ".join(name.split()), "the name on the statement, as text")
checks.check(not any(tag == "img" for tag, _ in statement.tags), "no element injected into the statement")
checks.equal(statement.classes.get(("currency-USD", "money closing")), [money(model.balance() - model.credit_balance(), "USD")], "statement closing")
checks.equal(statement.classes.get(("currency-USD", "money charges")), [money(sum(a for _, a, _ in invoices), "USD")], "statement charges")
checks.equal(statement.classes.get(("currency-USD", "money credits")), [money(12 * 1000, "USD")], "statement credits")
aging = {"current": 0, "days_1_30": 0, "days_61_90": 0}
for iid, _, due in invoices:
    days = (today - datetime.date.fromisoformat(due)).days
    aging["current" if days <= 0 else "days_1_30" if days <= 30 else "days_61_90"] += model.invoices[iid]["balance"]
for key, value in aging.items():
    checks.equal(statement.classes.get(("currency-USD", f"money aging-{key}")), [money(value, "USD")], f"statement aging {key}")

# --- the HTML report (CLI) -----------------------------------------------------------------------
report_file = os.path.join(workdir, f"{p}-report.html")
status, output = cli("report", "all", "--format", "html", "--output", report_file)
checks.equal(status, 0, f"report all --format html: {output[-300:]}")
report = render("file://" + report_file)
checks.check(any(tag == "svg" for tag, _ in report.tags) and any(tag == "rect" for tag, _ in report.tags), "the report has an SVG aging chart")
checks.check(not any(tag == "img" for tag, _ in report.tags), "no element injected into the report")
flat = " ".join(report.text.get("aging-USD", "").split())
expected_row = f"{cid} {' '.join(name.split())} {money(aging['current'], 'USD')} {money(aging['days_1_30'], 'USD')} 0.00 {money(aging['days_61_90'], 'USD')} 0.00 {money(model.balance(), 'USD')}"
checks.check(expected_row in flat, f"our customer's aging row in the report: expected {expected_row!r}")

checks.finish(prefix=p, customer_id=cid)
