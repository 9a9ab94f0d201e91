"""Shared driver of the dunning scenarios (s10-s12): a timeline of messages at simulated instants
played through the broker, `receivablesd dunning tick` passes every hour between them, and the
independent model (scripts/dunning_model.py) fed the same facts and the same pass instants. The
captured dunning events must equal the model's, none missing, none doubled."""
import collections
import datetime as dt
import json
import os
import sys
import warnings

from common import DEAD_LETTERS, EVENTS, SOURCE, ROOT, arclient, cli, money

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import dunning_model  # noqa: E402
from dunning_model import canonical, captured, instant, rfc3339, DUNNING_TYPES  # noqa: E402,F401

HOUR = dt.timedelta(hours=1)
POLICIES = os.environ.get("RECEIVABLESD_POLICIES_FILE")
HARD_DECLINES = ["stolen_card", "lost_card", "pickup_card", "fraudulent", "restricted_card", "card_not_supported", "invalid_account",
                 "account_closed", "no_account", "authorization_revoked", "R02", "R03", "R04", "R07", "R08", "R10", "R16", "R20", "R29",
                 "AC04", "AC06", "MD01", "MD07"]


def schema_validator():
    """Validates captured events against schemas/<type>.json (python3-jsonschema)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import pathlib
    import jsonschema
    from jsonschema import Draft202012Validator
    schemas = pathlib.Path(ROOT) / "schemas"
    store = {p.as_uri(): json.loads(p.read_text()) for p in schemas.glob("*.json")}
    cache = {}

    def problems(body):
        t = body.get("type")
        if t not in cache:
            path = schemas / f"{t}.json"
            schema = store[path.as_uri()]
            cache[t] = Draft202012Validator(schema, resolver=jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema, store=store))
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in cache[t].iter_errors(body)]
    return problems


class Timeline:
    def __init__(self, checks, prefix, start, capture_queue=None):
        self.checks = checks
        self.p = prefix
        self.model = dunning_model.Model(POLICIES, HARD_DECLINES)
        self.billing = arclient.Publisher("BILLING")
        self.gateway = arclient.Publisher("GATEWAY")
        self.portal_pub = arclient.Publisher("PORTAL")
        self.portal = arclient.Portal()
        self.cap = arclient.Capture(events_exchange=EVENTS, dead_letter_exchange=DEAD_LETTERS, queue=capture_queue,
                                    queue_arguments={"x-expires": 600_000} if capture_queue else None)
        self.cursor = start          # next pass instant not yet run
        self.barrier_customer = None
        self.passes = 0

    # --- time ----------------------------------------------------------------------------------
    def advance(self, until, every=HOUR):
        """Runs every pass from the cursor up to `until` (exclusive), in one CLI call, and in the model."""
        last = self.cursor
        while last + every < until:
            last += every
        if self.cursor >= until:
            return
        status, output = cli("dunning", "tick", "--now", rfc3339(self.cursor), "--until", rfc3339(last),
                             "--every", f"{int(every.total_seconds())}s", "--json", timeout=600)
        if status != 0:
            raise RuntimeError(f"dunning tick failed ({status}): {output[-2000:]}")
        moment = self.cursor
        while moment <= last:
            self.model.tick(moment)
            self.passes += 1
            moment += every
        self.cursor = moment

    def tick_once(self, moment):
        """One pass exactly at `moment` (the cursor does not move)."""
        status, output = cli("dunning", "tick", "--now", rfc3339(moment), "--json", timeout=120)
        if status != 0:
            raise RuntimeError(f"dunning tick failed ({status}): {output[-2000:]}")
        self.model.tick(moment)
        self.passes += 1
        return output

    def skip_to(self, moment):
        """Downtime: no passes until `moment`."""
        self.cursor = moment

    def sync(self):
        """Waits until the daemon applied everything published so far: a portal request queued
        after them is answered only after they were committed (one consumer, in order)."""
        if self.barrier_customer:
            return self.summary(self.barrier_customer)

    def summary(self, cid):
        reply = self.portal.request("account.summary.requested", {"customer_id": cid}, expect_source=SOURCE, timeout=60)
        return reply.get("data", {})

    # --- facts (published and modelled) ---------------------------------------------------------
    def event(self, type_, data, at, publisher, subject=None):
        publisher.publish(arclient.event(type_, data, source="dunning-it", subject=subject, time_=at))

    def customer(self, cid, time_zone=None, policy=None, at="2031-01-01T00:00:00Z"):
        data = {"customer_id": cid, "name": f"Customer {cid}"}
        if time_zone:
            data["time_zone"] = time_zone
        if policy:
            data["dunning_policy"] = policy
        self.event("customer.upserted", data, at, self.billing, cid)
        self.model.customer(cid, time_zone, policy)
        self.barrier_customer = self.barrier_customer or cid

    def invoice(self, iid, cid, currency, amount_text, due, at):
        amount = dunning_model.minor(amount_text, currency)
        self.event("invoice.issued", {"invoice_id": iid, "customer_id": cid, "number": f"N-{iid[-12:]}", "currency": currency,
                                      "amount": amount_text, "issue_date": at[:10], "due_date": due}, at, self.billing, cid)
        self.model.issue(iid, cid, f"N-{iid[-12:]}", currency, amount, due)

    def pay(self, pid, cid, currency, allocations, at, method="card"):
        total = sum(dunning_model.minor(a, currency) for _, a in allocations)
        self.event("payment.succeeded", {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": money(total, currency),
                                         "method": method, "received_at": at,
                                         "allocations": [{"invoice_id": i, "amount": a} for i, a in allocations]}, at, self.gateway, cid)
        self.model.pay(pid, [(i, dunning_model.minor(a, currency)) for i, a in allocations])

    def refund(self, pid, rid, currency, amount_text, at):
        self.event("payment.refunded", {"payment_id": pid, "refund_id": rid, "amount": amount_text}, at, self.gateway)
        self.model.refund(pid, dunning_model.minor(amount_text, currency))

    def void(self, iid, at):
        self.event("invoice.voided", {"invoice_id": iid, "reason": "cancelled order"}, at, self.billing)
        self.model.close(iid, "voided")

    def write_off(self, iid, at):
        self.event("invoice.written_off", {"invoice_id": iid, "reason": "uncollectible"}, at, self.billing)
        self.model.close(iid, "written_off")

    def dispute(self, did, iid, at):
        self.event("dispute.opened", {"dispute_id": did, "invoice_id": iid, "reason": "goods not received"}, at, self.portal_pub)
        self.model.dispute_open(did, iid)

    def resolve(self, did, iid, outcome, at):
        self.event("dispute.resolved", {"dispute_id": did, "invoice_id": iid, "outcome": outcome}, at, self.portal_pub)
        self.model.dispute_resolve(did, iid)

    def promise(self, iids, promised, at):
        self.event("promise_to_pay.recorded", {"invoice_ids": iids, "promised_date": promised}, at, self.portal_pub)
        self.model.promise(iids, promised)

    def pending(self, pid, cid, currency, amount_text, iids, at):
        data = {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": amount_text, "method": "ach", "initiated_at": at}
        if iids:
            data["invoice_ids"] = iids
        self.event("payment.pending", data, at, self.gateway, cid)
        self.model.pending_payment(pid, cid, currency, iids)

    def failed(self, pid, cid, currency, amount_text, code, retryable, iids, at, attempt=None):
        data = {"payment_id": pid, "customer_id": cid, "currency": currency, "amount": amount_text, "method": "card",
                "failure_code": code, "retryable": retryable}
        if iids:
            data["invoice_ids"] = iids
        if attempt is not None:
            data["attempt"] = attempt
        self.event("payment.failed", data, at, self.gateway, cid)
        self.model.failed(pid, cid, currency, dunning_model.minor(amount_text, currency), code, retryable, iids, instant(at), attempt)

    # --- checks ----------------------------------------------------------------------------------
    def mine(self):
        """Captured dunning events of this run's customers."""
        self.cap.poll()
        out = []
        for m in self.cap.events():
            if m.routing_key in DUNNING_TYPES and self.p.encode() in m.body:
                out.append(m)
        return out

    def settle(self, expected_count, timeout=90):
        self.cap.wait(lambda ms: len(self.mine()) >= expected_count, timeout=timeout)
        self.cap.settle(quiet=1.5, timeout=30)
        return self.mine()

    def compare(self, label="history"):
        """Captured dunning events == the model's, as multisets; every event valid and its id unique."""
        expected = [e for e in self.model.out if self.p in json.dumps(e)]
        try:
            messages = self.settle(len(expected))
        except TimeoutError as error:
            self.checks.check(False, f"{label}: {error}")
            messages = self.mine()
        problems = schema_validator()
        for m in messages:
            for problem in problems(m.json):
                self.checks.check(False, f"{label}: {m.routing_key} {m.json.get('id')} fails its schema: {problem}")
        ids = collections.Counter(m.json["id"] for m in messages)
        self.checks.check(all(n == 1 for n in ids.values()), f"{label}: an event id was published twice: {[i for i, n in ids.items() if n > 1]}")
        got = collections.Counter(canonical(captured(m)) for m in messages)
        want = collections.Counter(canonical(e) for e in expected)
        missing = want - got
        extra = got - want
        self.checks.check(not missing, f"{label}: {sum(missing.values())} expected event(s) missing: {sorted(missing)[:6]}")
        self.checks.check(not extra, f"{label}: {sum(extra.values())} unexpected event(s): {sorted(extra)[:6]}")
        return messages, expected

    def close(self):
        for c in (self.billing, self.gateway, self.portal_pub, self.portal):
            c.close()
