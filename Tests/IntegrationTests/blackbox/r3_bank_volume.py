"""A realistic bank day in volume: a few hundred credits of mixed quality against a generated
book, half of them first in an intraday camt.054, all in the night's camt.053 (sent twice). Every
credit is built for one outcome, so the expectation here is independent of the daemon's rules:
each credit's state, rule or reason, the invoices it paid and how much; then the auto-match rate,
and that no credit is applied twice or to the wrong customer (invoice balances at the end).
"""
import base64
import random

from common import Checks, arclient, capture, money, prefix

import bankfiles

checks = Checks()
p = prefix("r3")
seed = random.randrange(1 << 30)
rng = random.Random(seed)
base = rng.randint(100000, 899999)
cap = capture()
billing, bank = arclient.Publisher("BILLING"), arclient.Publisher("BANK")

customers, invoices = {}, {}   # id -> account; id -> dict
serial = 0


def new_invoice(cid, minor, reference=False):
    global serial
    serial += 1
    iid, number = f"{p}-I{serial}", f"RE-{base}-{serial:05d}"
    invoices[iid] = {"customer": cid, "number": number, "amount": minor, "balance": minor, "due": f"2026-0{1 + serial % 9}-1{serial % 10}",
                     "reference": bankfiles.creditor_reference(f"{base}X{serial}") if reference else None}
    return iid


for c in range(120):
    cid = f"{p}-C{c}"
    customers[cid] = bankfiles.iban("FR", f"30006{base:07d}{c:011d}") if c % 2 == 0 else None
    for _ in range(rng.randint(2, 4)):
        new_invoice(cid, rng.randint(50, 900) * 100 + rng.choice([0, 0, 50, 99]), reference=rng.random() < 0.5)

for cid, account in customers.items():
    data = {"customer_id": cid, "name": f"Customer {cid}"}
    if account:
        data["bank_accounts"] = [account]
    billing.publish(arclient.event("customer.upserted", data, source="billing-it", subject=cid))
for iid, v in invoices.items():
    data = {"invoice_id": iid, "customer_id": v["customer"], "number": v["number"], "currency": "EUR", "amount": money(v["amount"], "EUR"),
            "issue_date": "2026-01-01", "due_date": v["due"]}
    if v["reference"]:
        data["payment_reference"] = v["reference"]
    billing.publish(arclient.event("invoice.issued", data, source="billing-it", subject=v["customer"]))

free = sorted(invoices)
rng.shuffle(free)


def take(predicate=lambda i: True):
    for iid in free:
        if predicate(iid):
            free.remove(iid)
            return iid
    return None


def messy(number):
    prefix_, b, n = number.split("-")
    return rng.choice([number, number.lower(), f"{prefix_} {b} {int(n)}", f"{prefix_}{b}{n}", f"rg.nr. {prefix_.lower()}-{b}-{n}"])


credits = []   # (entry, expected state, rule/reason, {invoice: (paid, written off)})
for k in range(260):
    kind = rng.choices(["reference", "number", "two", "account", "charges", "over", "unknown", "conflict", "paid"],
                       [70, 60, 25, 30, 20, 20, 15, 10, 10])[0]
    ref = f"{p}-B{k}"
    if kind == "reference":
        iid = take(lambda i: invoices[i]["reference"])
        if not iid:
            continue
        v = invoices[iid]
        entry = {"ref": ref, "amount": v["balance"], "text": rng.choice([v["reference"], f"Ref {v['reference'][:4]} {v['reference'][4:]}"])}
        credits.append((entry, "matched", "structured_reference", {iid: (v["balance"], 0)}))
        v["balance"] = 0
    elif kind == "number":
        iid = take()
        v = invoices[iid]
        entry = {"ref": ref, "amount": v["balance"], "text": f"{messy(v['number'])} danke"}
        credits.append((entry, "matched", "invoice_number", {iid: (v["balance"], 0)}))
        v["balance"] = 0
    elif kind == "two":
        first = take()
        second = take(lambda i: invoices[i]["customer"] == invoices[first]["customer"])
        if not second:
            free.append(first)
            continue
        a, b = invoices[first], invoices[second]
        entry = {"ref": ref, "amount": a["balance"] + b["balance"], "text": f"{a['number']}, {messy(b['number'])}"}
        credits.append((entry, "matched", "invoice_number", {first: (a["balance"], 0), second: (b["balance"], 0)}))
        a["balance"] = b["balance"] = 0
    elif kind == "account":
        # a registered account and exactly one open invoice of this amount
        def unique(i):
            c = invoices[i]["customer"]
            return customers[c] and sum(1 for j, w in invoices.items() if w["customer"] == c and w["balance"] == invoices[i]["balance"] and w["balance"]) == 1
        iid = take(unique)
        if not iid:
            continue
        v = invoices[iid]
        entry = {"ref": ref, "amount": v["balance"], "text": "Zahlung", "debtor_account": customers[v["customer"]]}
        credits.append((entry, "matched", "debtor_account", {iid: (v["balance"], 0)}))
        v["balance"] = 0
    elif kind == "charges":
        iid = take(lambda i: invoices[i]["balance"] >= 50000)
        if not iid:
            continue
        v = invoices[iid]
        entry = {"ref": ref, "amount": v["balance"] - 350, "text": f"{v['number']} abzgl. Gebuehren"}
        credits.append((entry, "matched", "invoice_number", {iid: (v["balance"] - 350, 350)}))
        v["balance"] = 0
    elif kind == "over":
        iid = take()
        v = invoices[iid]
        entry = {"ref": ref, "amount": v["balance"] + 1234, "text": v["number"]}
        credits.append((entry, "partially_matched", "invoice_number", {iid: (v["balance"], 0)}))
        v["balance"] = 0
    elif kind == "unknown":
        entry = {"ref": ref, "amount": rng.randint(100, 99999), "text": rng.choice(["Spende", "Miete Maerz", f"Order {rng.randint(10, 9999)}"])}
        credits.append((entry, "exception", "no_match", {}))
    elif kind == "conflict":
        # an invoice of one customer named, the registered account of another
        iid = take(lambda i: invoices[i]["balance"])
        payer = next((c for c in customers if customers[c] and c != invoices[iid]["customer"]), None)
        entry = {"ref": ref, "amount": invoices[iid]["balance"], "text": invoices[iid]["number"], "debtor_account": customers[payer]}
        credits.append((entry, "exception", "ambiguous", {}))
    else:
        # an invoice already paid by an earlier credit of the day: a possible double payment
        paid = [i for i, v in invoices.items() if v["balance"] == 0 and i not in free]
        if not paid:
            continue
        iid = rng.choice(sorted(paid))
        entry = {"ref": ref, "amount": invoices[iid]["amount"], "text": invoices[iid]["number"]}
        credits.append((entry, "exception", "duplicate", {}))

entries = [c[0] for c in credits]
# Four of our accounts (messages stay small). The intraday advices have the morning's bookings
# (the first half of the day), the night's statements repeat them and add the rest; files go out
# account by account, so the bank books in the order the credits were built above.
ACCOUNTS = [bankfiles.iban("DE", f"3704004{a}{base:010d}") for a in range(4)]
half = len(entries) // 2


def blocks(part):
    size = -(-len(part) // len(ACCOUNTS))
    return [part[i * size:(i + 1) * size] for i in range(len(ACCOUNTS))]


mornings, evenings = blocks(entries[:half]), blocks(entries[half:])


def send(fmt, data, n):
    bank.publish(arclient.event("bank.statement.received", None, source="bank-it", id_=f"{p}-S{n}", format=fmt,
                                data_base64=base64.b64encode(data).decode()))


cap.wait(lambda ms: len([m for m in cap.events("invoice.status_changed") if m.data.get("invoice_id", "").startswith(p)]) >= len(invoices), timeout=120)
for a, account in enumerate(ACCOUNTS):
    send("camt.054", bankfiles.camt("054", account, "EUR", mornings[a], f"{p}-DAY{a}"), f"D{a}")
nights = [bankfiles.camt("053", account, "EUR", mornings[a] + evenings[a], f"{p}-NIGHT{a}", opening=10_000_000) for a, account in enumerate(ACCOUNTS)]
for round_ in ("N", "R"):   # the night's statements, then all of them re-sent
    for a, night in enumerate(nights):
        send("camt.053", night, f"{round_}{a}")
wanted = {e["ref"] for e in entries}


def decided(ms):
    return wanted <= {m.data["entry_id"] for m in cap.events() if m.routing_key.startswith("reconciliation.") and m.data.get("entry_id", "").startswith(p)}


try:
    cap.wait(decided, timeout=180)
except TimeoutError as error:
    checks.check(False, f"not every credit was decided: {error}")
cap.settle(quiet=2.0, timeout=60)

events = {}
for m in cap.events():
    if m.routing_key.startswith("reconciliation.") and m.data.get("entry_id", "").startswith(p):
        events.setdefault(m.data["entry_id"], []).append(m.data)
wrong = []
for entry, state, what, paid in credits:
    got = events.get(entry["ref"], [])
    if len(got) != 1:
        wrong.append(f"{entry['ref']}: {len(got)} decisions")
        continue
    d = got[0]
    outcome = (d.get("state", "exception"), d.get("rule") or d.get("reason"))
    applied = {a["invoice_id"]: (round(float(a["amount"]) * 100), round(float(a.get("written_off", "0")) * 100)) for a in d.get("allocations", [])}
    if outcome != (state, what) or applied != paid:
        wrong.append(f"{entry['ref']} ({entry.get('text')}): expected {state} {what} {paid}, got {outcome} {applied}")
checks.equal(wrong[:10], [], f"credits with another outcome than built for ({len(wrong)} of {len(credits)})")
automatic = sum(1 for _, state, _, _ in credits if state != "exception")
got_automatic = sum(1 for v in events.values() if v and v[0].get("state") in ("matched", "partially_matched"))
checks.equal(got_automatic, automatic, "auto-matched credits")
checks.finish(prefix=p, seed=seed, credits=len(credits), automatic=automatic,
              rate_percent=100 * automatic // max(1, len(credits)),
              invoices=[{"invoice_id": i, "balance_minor": v["balance"]} for i, v in invoices.items()])
