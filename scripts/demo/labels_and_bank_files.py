#!/usr/bin/python3
"""Demo part of issue 14: a gateway's own method labels are applied, and bank files as banks write
them are read (or refused with the line named where an entry would be lost).

Run by scripts/demo.sh after the day is played (services environment, RECEIVABLESD_BIN). Exit status 0
when every payment was applied and every bank file behaved as shown, 1 otherwise.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import uuid

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
import arclient  # noqa: E402

LABELS = [("ach_debit", "Stripe"), ("us_bank_account", "Stripe"), ("link", "Stripe"), ("paypal", "Braintree"), ("venmo", "Braintree"),
          ("klarna", "Adyen"), ("directEbanking", "Adyen"), ("ideal", "Mollie"), ("bacs_debit", "GoCardless"),
          ("BANK_ACCOUNT", "Square"), ("Zahlung per Handy", "a gateway's own label")]


def main():
    tag = "lbl" + uuid.uuid4().hex[:6]
    failures = 0
    cap = arclient.Capture()
    billing, gateway = arclient.Publisher("BILLING"), arclient.Publisher("GATEWAY")
    cid = f"C-{tag}"
    billing.publish(arclient.event("customer.upserted", {"customer_id": cid, "name": "Label Demo GmbH"}, source=f"urn:demo:{tag}:billing"))
    for n, (label, _) in enumerate(LABELS):
        iid = f"I-{tag}-{n}"
        billing.publish(arclient.event("invoice.issued", {"invoice_id": iid, "customer_id": cid, "number": iid, "currency": "EUR",
                                                          "amount": "120.00", "issue_date": "2026-03-01", "due_date": "2026-03-31"},
                                       source=f"urn:demo:{tag}:billing"))
        gateway.publish(arclient.event("payment.succeeded", {
            "payment_id": f"P-{tag}-{n}", "customer_id": cid, "currency": "EUR", "amount": "120.00", "method": label,
            "received_at": "2026-03-14T09:00:00Z", "allocations": [{"invoice_id": iid, "amount": "120.00"}]}, source=f"urn:demo:{tag}:gateway"))
    cap.wait(lambda ms: sum(1 for m in cap.events("payment.confirmed") if tag.encode() in m.body) >= len(LABELS), timeout=60)
    cap.settle(quiet=1.0, timeout=20)
    confirmed = {m.data["payment_id"]: m.data for m in cap.events("payment.confirmed") if tag.encode() in m.body}
    dead = [m for m in cap.dead_letters() if tag.encode() in m.body]
    print("\nGateway method labels (SPEC section 2: a payment is never refused for a label)")
    print("=" * 78)
    print(f"  {'method as sent':<20} {'gateway':<22} {'family':<24} invoice")
    for n, (label, gateway_name) in enumerate(LABELS):
        data = confirmed.get(f"P-{tag}-{n}")
        applied = data and data["allocations"] and data["allocations"][0]["invoice_balance"] == "0.00"
        failures += not applied
        print(f"  {label:<20} {gateway_name:<22} {(data or {}).get('method_family', '(unknown: kept as sent)'):<24} "
              f"{'paid' if applied else 'NOT APPLIED'}")
    print(f"  dead letters: {len(dead)}")
    failures += len(dead)

    print("\nBank files as banks write them (receivablesd bank parse)")
    print("=" * 78)
    fixtures = ROOT / "Tests" / "BankFormatsTests" / "Fixtures"
    with tempfile.TemporaryDirectory() as folder:
        broken = pathlib.Path(folder) / "unknown-tag.sta"
        broken.write_text(":20:STMT1\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C240101EUR100,00\n:61:240101C10,00NTRFNONREF\n:86:one\n"
                          ":16:240101C20,00NTRFNONREF\n:86:two\n:62F:C240101EUR130,00\n-\n")
        cases = [("pre-euro archive: ITL, FRF, NLG, BEF, ESP, XEU", fixtures / "mt940_historic_currencies.sta", 0),
                 ("camt.053 balances without CdtDbtInd", fixtures / "camt053_balance_without_cdtdbtind.xml", 0),
                 ("MT940 export without closing balance", fixtures / "mt940_no_closing_at_end.sta", 0),
                 ("an unknown tag where a :61: belongs", broken, 1)]
        for title, path, expected in cases:
            run = subprocess.run([os.environ["RECEIVABLESD_BIN"], "bank", "parse", str(path)], capture_output=True, text=True)
            entries = len(run.stdout.splitlines())
            first = (run.stderr.strip().splitlines() or ["(no output)"])
            outcome = f"{entries} entries" if run.returncode == 0 else "refused"
            failures += run.returncode != expected
            print(f"  {title:<48} {outcome}")
            for line in first[:1] + [l for l in first[1:] if l.startswith("warning")][:2]:
                print(f"      {line.replace(str(path), path.name)[:150]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
