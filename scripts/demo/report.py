"""The demo's report: what went in, what came out, in plain text for an AR clerk."""
import collections
import datetime as dt
import json
import pathlib
import warnings

from money import CURRENCY_ORDER, currency_key, heading, parse, show, show_text, table

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent.parent / "schemas"
BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]


def bucket(days_overdue):
    if days_overdue <= 0:
        return "current"
    if days_overdue <= 30:
        return "1-30"
    if days_overdue <= 60:
        return "31-60"
    if days_overdue <= 90:
        return "61-90"
    return "90+"


def header_text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else (value if value is not None else "")


class Outcome:
    """This run's share of what was captured, indexed for the report."""

    def __init__(self, scenario, messages):
        tag = scenario.tag
        prefix = f"C-{tag}-"
        self.events, self.dead, self.foreign = [], [], 0
        for m in messages:
            if m.exchange == "ar.dead-letter":
                if tag.encode() in m.body:
                    self.dead.append(m)
                else:
                    self.foreign += 1
                continue
            try:
                body = json.loads(m.body)
            except ValueError:
                self.foreign += 1
                continue
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            customer = data.get("customer_id") or body.get("subject") or ""
            if customer.startswith(prefix):
                self.events.append((m.routing_key, body, data))
            else:
                self.foreign += 1
        self.by_type = collections.Counter(t for t, _, _ in self.events)
        self.status = collections.defaultdict(list)       # invoice -> [(from, to, balance)]
        self.credit = collections.defaultdict(list)       # (customer, currency) -> [balance]
        self.confirmed = collections.defaultdict(list)    # payment -> [data]
        self.notices = collections.defaultdict(list)
        for t, body, data in self.events:
            if t == "invoice.status_changed":
                self.status[data.get("invoice_id")].append((data.get("from"), data.get("to"), data.get("balance")))
            elif t == "credit_balance.changed":
                self.credit[(data.get("customer_id"), data.get("currency"))].append(data.get("balance"))
            elif t == "payment.confirmed":
                self.confirmed[data.get("payment_id")].append(data)
            elif t == "payment.failed_notice":
                self.notices[data.get("payment_id")].append(data)

    def last_status(self, invoice):
        changes = self.status.get(invoice)
        return changes[-1] if changes else (None, None, None)


def render(scenario, messages, summaries, held_snapshots, held_now, dead_now, played, elapsed):
    out = Outcome(scenario, messages)
    inv = scenario.invoices
    cust = scenario.customers
    number = {i: v["number"] for i, v in inv.items()}

    def name(cid, width=30):
        n = cust.get(cid, {}).get("name", cid)
        return n if len(n) <= width else n[: width - 1] + "…"

    parts = []
    parts.append(heading(f"receivablesd demo — run {scenario.tag}, seed {scenario.seed}, business date {scenario.today}"))
    by_currency = collections.Counter(v["currency"] for v in inv.values())
    parts.append(f"  {len(cust)} customers ({sum(1 for c in cust.values() if c.get('bank_accounts'))} with bank accounts on file), "
                 f"{len(inv)} invoices: " + ", ".join(f"{by_currency[c]} {c}" for c in CURRENCY_ORDER if by_currency[c]))
    parts.append(f"  This report covers only this run's ids (*-{scenario.tag}-*); {out.foreign} other message(s) on the "
                 f"exchanges during the run were ignored.")

    # --- traffic in ---
    parts.append(heading("Traffic played (ar.inbound)"))
    counts = collections.Counter()
    for m in played:
        t = m.body.get("type") if isinstance(m.body, dict) else (m.routing_key or "?")
        counts[(t, m.role, "bad" if m.expect else ("re-send" if m.story == "resend" and m.note.startswith("the same") else "ok"))] += 1
    rows = [[t, role, n if kind == "ok" else "", n if kind == "bad" else "", n if kind == "re-send" else ""]
            for (t, role, kind), n in sorted(counts.items())]
    merged = collections.OrderedDict()
    for t, role, ok, bad, resend in rows:
        r = merged.setdefault((t, role), [t, role, 0, 0, 0])
        r[2] += ok or 0
        r[3] += bad or 0
        r[4] += resend or 0
    parts.append(table(["TYPE", "PUBLISHER", "MESSAGES", "OF WHICH DELIBERATELY BAD", "OF WHICH RE-SENT"],
                       [[t, r, a + b + c, b or "", c or ""] for t, r, a, b, c in merged.values()], right={2, 3, 4}))
    parts.append(f"  total {len(played)} messages, plus {len(summaries)} portal account summary requests")

    # --- events out ---
    parts.append(heading("Events out (ar.events) by type"))
    parts.append(table(["EVENT TYPE", "COUNT"], [[t, n] for t, n in sorted(out.by_type.items())], right={1}))
    parts.append(f"  total {sum(out.by_type.values())}")
    statuses = collections.Counter((f or "(new)") + " -> " + t for i in out.status.values() for f, t, _ in i)
    parts.append("\n  invoice status changes:")
    parts.append(table(["FROM -> TO", "COUNT"], sorted(statuses.items(), key=lambda kv: -kv[1]), right={1}, indent="    "))

    # --- dead letters ---
    parts.append(heading("Dead letters by reason (x-rejection-reason)"))
    by_note = {}
    for m in played:
        if isinstance(m.body, dict):
            by_note[m.body.get("id")] = m
    reasons = collections.OrderedDict()
    for m in out.dead:
        reasons.setdefault(m.reason or "?", []).append(m)
    rows = []
    for reason, ms in sorted(reasons.items()):
        first = ms[0]
        try:
            ident = json.loads(first.body).get("id")
        except ValueError:
            ident = None
        what = by_note[ident].note if ident in by_note else ("truncated body (not JSON)" if ident is None else "")
        rows.append([reason, len(ms), what, header_text(first.headers.get("x-rejection-detail"))])
    parts.append(table(["REASON", "COUNT", "EXAMPLE (what we sent)", "DETAIL (x-rejection-detail)"], rows, right={1}))
    expected = collections.Counter(m.expect for m in scenario.bad)
    got = collections.Counter(m.reason for m in out.dead)
    mismatch = [(r, expected[r], got[r]) for r in sorted(set(expected) | set(got)) if expected[r] != got[r]]
    if mismatch:
        parts.append("  NOTE: expected vs dead-lettered differ: " + ", ".join(f"{r} expected {e} got {g}" for r, e, g in mismatch))
    else:
        parts.append(f"  all {len(scenario.bad)} deliberately bad messages were dead-lettered with the expected reason; nothing else was")

    # --- payment.confirmed sample ---
    parts.append(heading("payment.confirmed — sample"))
    story_payments = [s.get("payment") for s in scenario.stories.values() if s.get("payment")]
    chosen = [p for p in story_payments if p in out.confirmed]
    others = sorted(p for p in out.confirmed if p not in chosen)
    multi = [p for p in others if len(out.confirmed[p][0].get("allocations", [])) > 1][:3]
    chosen += multi + [p for p in others if p not in multi][:: max(1, len(others) // 6)][:6]
    rows = []
    for p in chosen:
        d = out.confirmed[p][0]
        cur = d["currency"]
        allocs = d.get("allocations") or []
        alloc_text = "; ".join(f"{number.get(a['invoice_id'], a['invoice_id'])} {show_text(a['amount'], cur)} (left {show_text(a['invoice_balance'], cur)})"
                               for a in allocs) or "(none applied)"
        rows.append([name(d["customer_id"], 26), d["method"], show_text(d["amount"], cur), alloc_text,
                     show_text(d["unapplied_amount"], cur), show_text(d["customer_balance"], cur), show_text(d.get("credit_balance", "0"), cur)])
    parts.append(table(["CUSTOMER", "METHOD", "AMOUNT", "ALLOCATIONS (invoice amount (balance left))", "UNAPPLIED", "CUST. BALANCE",
                        "CREDIT"], rows, right={2, 4, 5, 6}))
    parts.append(f"  {sum(len(v) for v in out.confirmed.values())} payment.confirmed for {len(out.confirmed)} payments")

    # --- stories ---
    parts.append(heading("The day's special cases (checked against the events)"))
    rows = []
    for key, s in scenario.stories.items():
        verdict, evidence = check_story(key, s, out, summaries, held_snapshots, held_now, scenario)
        rows.append([key, s["what"], verdict, evidence])
    parts.append(table(["CASE", "WHAT HAPPENED", "RESULT", "EVIDENCE"], rows))

    # --- account summaries ---
    parts.append(heading("Account summaries (portal request/reply: account.summary.requested)"))
    featured = [scenario.stories[k]["customer"] for k in ("overpay_refund", "chargeback", "prepaid", "ach_pending", "credit_first", "held_customer")
                if k in scenario.stories]
    multi_cur = [c for c, v in cust.items() if len(v["currencies"]) > 1]
    featured += multi_cur[:1]
    biggest = sorted((c for c in cust if c not in featured and c in summaries and "balances" in summaries[c].get("data", {})),
                     key=lambda c: -len(summaries[c]["data"]["open_invoices"]))
    featured += biggest[:1]
    for cid in featured:
        reply = summaries.get(cid)
        parts.append(render_summary(cid, cust[cid], reply, number))

    # --- aging ---
    parts.append(heading("Aging — derived by this demo from the portal summaries (balance of open invoices by days overdue)"))
    aging = collections.defaultdict(lambda: collections.Counter())
    per_customer = collections.defaultdict(lambda: collections.Counter())
    credit = collections.Counter()
    pending = collections.Counter()
    answered = 0
    for cid, reply in summaries.items():
        data = reply.get("data") or {}
        if "open_invoices" not in data:
            continue
        answered += 1
        for o in data["open_invoices"]:
            cur = o["currency"]
            minor = parse(o["balance"], cur)
            aging[cur][bucket(int(o["days_overdue"]))] += minor
            per_customer[(cid, cur)][bucket(int(o["days_overdue"]))] += minor
        for b in data.get("balances", []):
            credit[b["currency"]] += parse(b["unapplied_credit"], b["currency"])
            pending[b["currency"]] += parse(b["pending"], b["currency"])
    rows = []
    for cur in sorted(aging, key=currency_key):
        a = aging[cur]
        rows.append([cur] + [show(a[b], cur, code=False) for b in BUCKETS] + [show(sum(a.values()), cur, code=False),
                                                                              show(credit[cur], cur, code=False), show(pending[cur], cur, code=False)])
    parts.append(table(["CURRENCY"] + [b.upper() for b in BUCKETS] + ["TOTAL OPEN", "UNAPPLIED CREDIT", "PENDING"], rows,
                       right=set(range(1, 9))))
    parts.append(f"  from {answered} account summaries; 'current' = not yet due or due today. Unapplied credit is shown beside, "
                 "not netted.")
    worst = sorted(per_customer.items(), key=lambda kv: -(kv[1]["61-90"] + kv[1]["90+"]) / (10 ** 2))
    rows = []
    for (cid, cur), a in worst:
        if a["61-90"] + a["90+"] == 0:
            continue
        rows.append([name(cid, 32), cur] + [show(a[b], cur, code=False) for b in BUCKETS])
        if len(rows) == 8:
            break
    parts.append("\n  customers with balances more than 60 days overdue (first 8, same source):")
    parts.append(table(["CUSTOMER", "CUR"] + [b.upper() for b in BUCKETS], rows, right=set(range(2, 7)), indent="    "))

    # --- held and dead letters (CLI) ---
    parts.append(heading("Held messages (receivablesd held list, this run's rows)"))
    for title, (text, n) in held_snapshots.items():
        parts.append(f"  after phase '{title.split('  ', 1)[-1]}': {n} held")
        parts.append("  " + text.replace("\n", "\n  "))
    parts.append(f"  at the end of the day: {held_now[1]} held")
    parts.append("  " + held_now[0].replace("\n", "\n  "))
    parts.append(heading("Dead-letter list (receivablesd dead-letter list, this run's rows)"))
    parts.append(dead_now[0])
    parts.append(f"  {dead_now[1]} dead letter(s) from this run")
    if dead_now[1] != len(out.dead):
        parts.append(f"  ({len(out.dead) - dead_now[1]} more captured above: a body that is not JSON has no id the list can show, "
                     "so it cannot be attributed to this run here)")

    # --- contract check ---
    parts.append(heading("Contract check: this run's outbound events and replies against schemas/*.json"))
    parts.append(contract_check(out, summaries))
    parts.append(f"\n  played and reported in {elapsed:.1f}s")
    return "\n".join(parts)


def render_summary(cid, customer, reply, number):
    lines = [f"\n  {customer['name']}  ({cid}, {customer['time_zone']})"]
    if reply is None:
        return "\n".join(lines + ["    (no reply)"])
    data = reply.get("data") or {}
    if "error" in data:
        return "\n".join(lines + [f"    error: {data['error']}"])
    rows = []
    for b in sorted(data.get("balances", []), key=lambda b: currency_key(b["currency"])):
        cur = b["currency"]
        rows.append([cur, show_text(b["balance"], cur), show_text(b["unapplied_credit"], cur), show_text(b["pending"], cur)])
    if rows:
        lines.append(table(["CURRENCY", "BALANCE", "UNAPPLIED CREDIT", "PENDING"], rows, right={1, 2, 3}, indent="    "))
    else:
        lines.append("    nothing owed, no credit, nothing pending")
    rows = []
    for o in data.get("open_invoices", []):
        cur = o["currency"]
        rows.append([o["number"], o["issue_date"], o["due_date"], show_text(o["amount"], cur), show_text(o["balance"], cur), o["status"],
                     o["days_overdue"], "yes" if o.get("pending_payment") else ""])
    if rows:
        lines.append("")
        lines.append(table(["INVOICE", "ISSUED", "DUE", "AMOUNT", "BALANCE", "STATUS", "DAYS OVERDUE", "PAYMENT PENDING"], rows,
                           right={3, 4, 6}, indent="    "))
    else:
        lines.append("    no open invoices")
    nd = data.get("next_due")
    if nd:
        lines.append(f"    next due: {number.get(nd['invoice_id'], nd['invoice_id'])} on {nd['due_date']}, {show_text(nd['balance'], nd['currency'])}")
    else:
        lines.append("    next due: nothing")
    return "\n".join(lines)


def check_story(key, s, out, summaries, held_snapshots, held_now, scenario):
    """(verdict, evidence) for one special case, from the captured events and replies."""
    cur_of = lambda i: scenario.invoices[i]["currency"]  # noqa: E731

    def status(i):
        f, t, b = out.last_status(i)
        return t, b

    try:
        if key == "overpay_refund":
            c = out.confirmed.get(s["payment"], [{}])[0]
            t, b = status(s["invoice"])
            credits = out.credit.get((s["customer"], "USD"), [])
            ok = c.get("unapplied_amount") == "250.00" and t == "paid" and credits[-1:] == ["0.00"]
            return ok_text(ok), f"unapplied {c.get('unapplied_amount')}, credit {' -> '.join(credits)}, invoice {t}"
        if key == "chargeback":
            path = [t for _, t, _ in out.status.get(s["invoice"], [])]
            t, b = status(s["invoice"])
            ok = "paid" in path and t == "open" and b == "4860.50"
            return ok_text(ok), f"invoice {' -> '.join(path)}, balance {b}"
        if key == "prepaid":
            c = out.confirmed.get(s["payment"], [{}])[0]
            t, b = status(s["invoice"])
            ok = t == "paid"
            return ok_text(ok), f"confirmed with unapplied {c.get('unapplied_amount')} KWD; invoice {t} on issue, balance {b}"
        if key == "prepaid_not_spent":
            path = [t for _, t, _ in out.status.get(s["invoice"], [])]
            t, b = status(s["invoice"])
            ok = t == "open" and b == "412.750"
            return ok_text(ok), f"other invoice {' -> '.join(path)}, balance {b} KWD"
        if key == "held_customer":
            snapshot = next(iter(held_snapshots.values()), ("", 0))
            was_held = "invoice.issued" in snapshot[0] and f"customer {s['customer']}" in snapshot[0]
            t, b = status(s["invoice"])
            ok = was_held and t == "open" and f"customer {s['customer']}" not in held_now[0]
            return ok_text(ok), f"held after billing sync: {'yes' if was_held else 'no'}; now {t}, balance {b}"
        if key == "credit_first":
            i = s["invoice"]
            path = [t for _, t, _ in out.status.get(i, [])]
            t, b = status(i)
            ok = t == "partially_paid" and b == "880.00"
            return ok_text(ok), f"new invoice {' -> '.join(path)}, balance {b} EUR"
        if key == "adjust_credit":
            cur = cur_of(s["invoice"])
            credits = out.credit.get((s["customer"], cur), [])
            ok = any(parse(x, cur) > 0 for x in credits)
            return ok_text(ok), f"credit {cur} {' -> '.join(credits) or '(no change)'}"
        if key == "void_credit":
            cur = cur_of(s["invoice"])
            t, b = status(s["invoice"])
            credits = out.credit.get((s["customer"], cur), [])
            ok = t == "voided" and any(parse(x, cur) > 0 for x in credits)
            return ok_text(ok), f"invoice {t}; credit {cur} {' -> '.join(credits) or '(no change)'}"
        if key == "hard_decline":
            n = out.notices.get(s["payment"], [])
            ok = len(n) == 1 and n[0].get("next_attempt") == "none"
            return ok_text(ok), f"{len(n)} payment.failed_notice, next_attempt {n[0].get('next_attempt') if n else '-'}"
        if key == "ach_settles":
            c = out.confirmed.get(s["payment"], [])
            states = [status(i)[0] for i in s["invoices"]]
            ok = len(c) == 1 and all(x == "paid" for x in states)
            return ok_text(ok), f"{len(c)} payment.confirmed; invoices {', '.join(str(x) for x in states)}"
        if key == "ach_pending":
            data = (summaries.get(s["customer"]) or {}).get("data") or {}
            pend = [b["pending"] for b in data.get("balances", []) if b["currency"] == "USD"]
            flags = [o.get("pending_payment") for o in data.get("open_invoices", [])]
            ok = pend and parse(pend[0], "USD") > 0 and flags and all(flags)
            return ok_text(ok), f"summary pending USD {pend[0] if pend else '-'}, invoices flagged pending {flags}"
        if key == "resend":
            c = out.confirmed.get(s["payment"], [])
            return ok_text(len(c) == 1), f"{len(c)} payment.confirmed for 3 deliveries"
        if key == "ghost_refund":
            ok = s["payment"] in held_now[0]
            return ok_text(ok), "listed by held list, waiting for payment" if ok else "not in held list"
    except Exception as error:  # a report must not die on an unexpected shape
        return "CHECK", f"could not evaluate: {error!r}"
    return "", ""


def ok_text(ok):
    return "ok" if ok else "UNEXPECTED"


def contract_check(out, summaries):
    try:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import jsonschema
        from jsonschema import Draft202012Validator, FormatChecker
    except ImportError:
        return "  (python3-jsonschema not installed: skipped)"
    store = {p.as_uri(): json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    validators = {}

    def validator(t):
        if t not in validators:
            path = SCHEMAS / f"{t}.json"
            schema = store.get(path.as_uri())
            validators[t] = None if schema is None else Draft202012Validator(
                schema, resolver=jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store),
                format_checker=FormatChecker())
        return validators[t]

    results = collections.OrderedDict()
    items = [(t, body) for t, body, _ in out.events] + [("account.summary.reply", r) for r in summaries.values()]
    for t, body in items:
        v = validator(t)
        r = results.setdefault(t, [0, 0, collections.Counter()])
        if v is None:
            r[2]["no schema for this type"] += 1
            continue
        problems = {problem_text(leaf) for e in v.iter_errors(body) for leaf in leaves(e)}
        if problems:
            r[1] += 1
            r[2].update(problems)
        else:
            r[0] += 1
    rows = []
    for t, (ok, bad, problems) in sorted(results.items()):
        listed = problems.most_common(4) or [("", 0)]
        for i, (problem, n) in enumerate(listed):
            rows.append([t if i == 0 else "", ok if i == 0 else "", bad if i == 0 else "",
                         f"{problem} ({n}x)" if problem else ""])
    return table(["TYPE", "VALID", "INVALID", "PROBLEMS (per distinct problem: how many messages)"], rows, right={1, 2})


def leaves(error):
    """The innermost errors; for oneOf/anyOf only the branch the message came closest to (the
    branch whose errors reach deepest into the message)."""
    if not error.context:
        yield error
        return
    groups = collections.defaultdict(list)
    for e in error.context:
        groups[e.relative_schema_path[0] if e.relative_schema_path else 0].append(e)
    if error.validator in ("oneOf", "anyOf"):
        chosen = max(groups.values(), key=lambda es: max(len(e.absolute_path) for e in es))
    else:
        chosen = error.context
    for e in chosen:
        yield from leaves(e)


def problem_text(error):
    path = "/".join("[]" if isinstance(x, int) else str(x) for x in error.absolute_path) or "(root)"
    message = error.message if len(error.message) <= 90 else error.message[:87] + "..."
    return f"{path}: {message}"


def self_check(scenario):
    """Problems with the generated good messages (schema), for development (--self-check)."""
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    store = {p.as_uri(): json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    problems = []
    for phase in scenario.phases:
        for m in phase.messages:
            if m.expect or not isinstance(m.body, dict):
                continue
            path = SCHEMAS / f"{m.body['type']}.json"
            schema = store[path.as_uri()]
            v = Draft202012Validator(schema, resolver=jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store),
                                     format_checker=FormatChecker())
            for e in v.iter_errors(m.body):
                problems.append(f"{m.body['type']} {m.body['id']} ({m.note}): {'/'.join(map(str, e.absolute_path))}: {e.message}")
    for m in scenario.bad:
        if not isinstance(m.body, dict) or m.expect in ("forbidden_publisher", "conflicting_duplicate", "currency_mismatch",
                                                        "amount_exceeds_balance", "foreign_reference"):
            continue
        path = SCHEMAS / f"{m.body['type']}.json"
        schema = store[path.as_uri()]
        v = Draft202012Validator(schema, resolver=jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store),
                                 format_checker=FormatChecker())
        if v.is_valid(m.body):
            problems.append(f"bad message is valid: {m.note}")
    return problems
