#!/usr/bin/python3
"""The end of the demo day as the portal and the AR team read it (issue 11): a statement, a page of
payment history, the aging report and DSO; the HTML statement and report written to the demo
folder; the reference portal started on loopback, its address printed and one page fetched.

Run by scripts/demo.sh after play.py, with the services environment and RECEIVABLESD_BIN.
Usage: statements.py OUT_DIR
"""
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import arclient  # noqa: E402

OUT = pathlib.Path(sys.argv[1])
BIN = os.environ["RECEIVABLESD_BIN"]
today = datetime.datetime.now(datetime.timezone.utc).date()
start = (today - datetime.timedelta(days=30)).isoformat()


def say(text):
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def cli(*args):
    completed = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        raise SystemExit(f"receivablesd {' '.join(args)} failed: {completed.stdout}{completed.stderr}")
    return completed.stdout


def heading(text):
    print(f"\n{text}\n{'=' * len(text)}")


# The customer owing the most in the aging report is the one to look at.
aging = json.loads(cli("report", "aging", "--format", "json"))
rows = [row for section in aging["sections"] for row in section["rows"] if not row.get("is_total")]
if not rows:
    say("no open receivables: nothing to show")
    sys.exit(0)
top = max(rows, key=lambda row: int(row["total"].replace(".", "")))
cid = top["customer_id"]

heading(f"Statement of account of {top['name']} ({cid}), {start} to {today}")
portal = arclient.Portal()
reply = portal.request("statement.requested", {"customer_id": cid, "from": start, "to": today.isoformat()})
data = reply["data"]
for statement in data["statements"]:
    c = statement["currency"]
    print(f"  {c}: opening {statement['opening_balance']}, charges {statement['charges']}, credits {statement['credits']}, "
          f"closing {statement['closing_balance']} (open invoices {statement['closing_receivable']}, unapplied credit {statement['unapplied_credit']})")
    for m in statement["movements"]:
        print(f"    {m['date']}  {m['kind']:<12} {m['reference'][:28]:<28} {m['amount']:>14} {m['running_balance']:>14}")
    a = statement["aging"]
    print(f"    aging at {today}: current {a['current']}, 1-30 {a['days_1_30']}, 31-60 {a['days_31_60']}, "
          f"61-90 {a['days_61_90']}, 90+ {a['days_over_90']}")
print(f"  (as known at {data['as_known_at']}: asking again with as_known_at gives exactly this statement)")

heading(f"Payment history of {cid}, first page")
history = portal.request("payment_history.requested", {"customer_id": cid, "limit": 5})["data"]
for item in history.get("payments", []):
    applied = ", ".join(f"{a['invoice_number']} {a['amount']}" for a in item["allocations"]) or "-"
    refunds = ", ".join(f"{r['kind']} {r['amount']}" for r in item["refunds"])
    print(f"  {item['received_at'][:19]}  {item['payment_id'][:24]:<24} {item['method']:<13} {item['amount']:>12} {item['currency']}  "
          f"applied: {applied}{'  ' + refunds if refunds else ''}")
print(f"  next_cursor: {history.get('next_cursor') or 'none (last page)'}")
portal.close()

heading("Aging and DSO at the end of the day (receivablesd report aging / dso)")
print(cli("report", "aging"))
print(cli("report", "dso"))

statement_file, report_file = OUT / f"statement-{cid}.html", OUT / "report.html"
cli("statement", "--customer", cid, "--from", start, "--to", today.isoformat(), "--format", "html", "--output", str(statement_file))
cli("report", "all", "--format", "html", "--output", str(report_file))
say(f"wrote {statement_file} and {report_file}")

# The reference portal: its own AMQP connection as the portal user, HTTP on loopback.
portal_bin = str(pathlib.Path(BIN).parent / "receivablesd-portal")
process = subprocess.Popen([portal_bin, "--port", os.environ.get("RECEIVABLESD_PORTAL_PORT", "0")], stdout=subprocess.PIPE, text=True)
try:
    line = process.stdout.readline().strip()
    address = line.removeprefix("portal listening on ").rstrip("/")
    say(f"reference portal: {address}/customers/{cid}  (receivablesd-portal, pid {process.pid})")
    page = urllib.request.urlopen(f"{address}/customers/{urllib.request.quote(cid, safe='')}", timeout=60).read()
    (OUT / f"portal-{cid}.html").write_bytes(page)
    say(f"fetched the portal page ({len(page)} bytes) to {OUT / f'portal-{cid}.html'}")
    if os.environ.get("DEMO_PORTAL_SECONDS"):
        say(f"keeping the portal up for {os.environ['DEMO_PORTAL_SECONDS']} s (DEMO_PORTAL_SECONDS)")
        time.sleep(int(os.environ["DEMO_PORTAL_SECONDS"]))
finally:
    process.terminate()
    process.wait(timeout=10)
