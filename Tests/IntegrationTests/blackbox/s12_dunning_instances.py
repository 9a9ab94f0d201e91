"""Scenario 12: two daemon instances with their own dunning clocks (every second) and concurrent
`dunning tick` runs over the same data send each reminder exactly once; a reload (SIGHUP) changes
the policies the next pass uses, and a broken policies file is refused (the old ones stay).

  setup STATE POLICIES     customers and invoices due around today (real clock), applied
  race STATE POLICIES      (daemons A and B just started) 4 concurrent ticks x 3 rounds; then every
                           expected reminder arrived exactly once, nothing else
  reload STATE POLICIES    (after SIGHUP with templates v2-) a new invoice is reminded with v2
  refused STATE POLICIES   (after SIGHUP with a broken file) a new invoice is still reminded with v2

Steps are chosen so that no new one falls due within a day, so a run across midnight is safe."""
import collections
import datetime as dt
import os
import pickle
import random
import subprocess
import sys
import threading

from common import Checks, env, prefix
from dunning_common import Timeline, instant

phase, state_file, policies = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["RECEIVABLESD_POLICIES_FILE"] = policies  # our `dunning tick` runs use the daemons' policies
checks = Checks()
today = dt.datetime.now(dt.timezone.utc).date()
OFFSETS = [10, 2, -1, -9, -20, -35, -60]  # due dates relative to today: none, upcoming, due, +7, +14, +30, +45


def reduced(e):
    """An event without its pass instant and local date (they depend on which pass sent it)."""
    lines = tuple(sorted((l["invoice_id"], l["balance"], l["due_date"]) for l in e["invoices"]))
    return (e["type"], e["customer_id"], e.get("level"), e["currency"], e["total"], e.get("channel"), e.get("template"), lines)


def save(t, extra=None):
    with open(state_file, "wb") as f:
        pickle.dump({"p": t.p, "model": t.model, **(extra or {})}, f)


def load():
    with open(state_file, "rb") as f:
        state = pickle.load(f)
    t = Timeline(checks, state["p"], dt.datetime.now(dt.timezone.utc), capture_queue=f"{state['p']}-capture")
    t.model = state["model"]
    return t, state


def wait_for_due(t, iid, timeout=60):
    """The reminder.due a daemon pass sends for a new invoice due yesterday."""
    def found(messages):
        return [m for m in messages if m.routing_key == "reminder.due" and iid.encode() in m.body]
    try:
        t.cap.wait(lambda ms: found(ms), timeout=timeout)
    except TimeoutError as error:
        checks.check(False, f"no reminder.due for {iid}: {error}")
        return []
    t.cap.settle(quiet=2.5, timeout=20)
    return found(t.cap.messages)


def one_customer_due_yesterday(t, name):
    cid = f"{t.p}-{name}"
    at = f"{today.isoformat()}T00:00:00Z"
    t.customer(cid, at=at)
    iid = f"{cid}-I"
    t.invoice(iid, cid, "USD", "77.00", (today - dt.timedelta(days=1)).isoformat(), at)
    return iid


if phase == "setup":
    p = prefix("it12")
    t = Timeline(checks, p, dt.datetime.now(dt.timezone.utc), capture_queue=f"{p}-capture")
    t.model = __import__("dunning_model").Model(policies)
    rng = random.Random(p)
    count = 0
    for n in range(12):
        cid = f"{p}-C{n}"
        t.customer(cid, at=f"{today.isoformat()}T00:00:00Z")
        for k in range(rng.randint(2, 6)):
            offset = rng.choice(OFFSETS)
            currency = "EUR" if rng.random() < 0.2 else "USD"
            t.invoice(f"{cid}-I{k}", cid, currency, f"{rng.randint(10, 999)}.{rng.randint(0, 99):02d}",
                      (today + dt.timedelta(days=offset)).isoformat(), f"{today.isoformat()}T00:00:00Z")
            count += 1
    t.sync()
    save(t)
    checks.finish(prefix=p, phase=phase, invoices=count)

t, state = load()
if phase == "race":
    outputs = []
    lock = threading.Lock()

    def tick():
        completed = subprocess.run([env("RECEIVABLESD_BIN"), "dunning", "tick", "--json"], capture_output=True, text=True, timeout=120)
        with lock:
            outputs.append(completed)

    for _ in range(3):
        threads = [threading.Thread(target=tick) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for completed in outputs:
        checks.equal(completed.returncode, 0, f"dunning tick exit status ({completed.stderr[-500:]})")
    now = dt.datetime.now(dt.timezone.utc)
    t.model.tick(now)
    expected = [e for e in t.model.out if "invoices" in e]
    messages = t.settle(len(expected), timeout=60)
    t.cap.settle(quiet=3.0, timeout=30)  # both daemons keep passing every second: nothing more may come
    messages = t.mine()
    ids = collections.Counter(m.json["id"] for m in messages)
    checks.check(all(n == 1 for n in ids.values()), f"an event id was published twice: {[i for i, n in ids.items() if n > 1]}")
    got = collections.Counter(reduced(m.json["data"] | {"type": m.routing_key}) for m in messages)
    want = collections.Counter(reduced(e) for e in expected)
    checks.check(not (want - got), f"missing reminders: {sorted(want - got)[:5]}")
    checks.check(not (got - want), f"reminders not expected or sent twice: {sorted(got - want)[:5]}")
    for m in messages:
        data = m.json["data"]
        checks.equal(data.get("local_date"), m.json["time"][:10], f"{m.json['id']} local date (UTC customer)")
        for line in data["invoices"]:
            days = (dt.date.fromisoformat(data["local_date"]) - dt.date.fromisoformat(line["due_date"])).days
            checks.equal(line["days_overdue"], days, f"{line['invoice_id']} days_overdue")
    by_cli = sum(1 for c in outputs for line in c.stdout.splitlines() if '"kind":"reminder"' in line)
    save(t)
    checks.finish(prefix=t.p, phase=phase, reminders=len(messages), expected=len(expected), sent_by_cli=by_cli,
                  sent_by_daemons=len(messages) - by_cli, ticks=len(outputs))

if phase in ("reload", "refused"):
    iid = one_customer_due_yesterday(t, "R1" if phase == "reload" else "R2")
    found = wait_for_due(t, iid)
    checks.equal(len(found), 1, f"reminder.due for {iid} (exactly once)")
    if found:
        checks.equal(found[0].json["data"].get("template"), "v2-invoice-due", f"template after {phase}")
    if phase == "refused":
        t.cap.delete()
    checks.finish(prefix=t.p, phase=phase)
