#!/usr/bin/python3
"""Plays a generated day of AR traffic through the broker and prints what came out of it.

Run by scripts/demo.sh with the services environment and RECEIVABLESD_BIN; needs Debian's
python3 (python3-pika; python3-jsonschema for the contract check). Exit status: 0 when the day
was played and reported (findings are printed, not fatal), 2 when it could not be played.
"""
import argparse
import datetime as dt
import json
import os
import pathlib
import random
import string
import subprocess
import sys
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import pika  # noqa: E402

import arclient  # noqa: E402
from generate import generate  # noqa: E402
import report  # noqa: E402


def log(text):
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


class Portal:
    """The customer portal: many account.summary.requested at once, replies matched by correlation id."""

    def __init__(self, source):
        self.source = source
        self.connection = arclient.connect("PORTAL")
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.user = arclient.credentials("PORTAL")[0]

    def summaries(self, customer_ids, timeout=30.0):
        pending = {}
        for cid in customer_ids:
            correlation = str(uuid.uuid4())
            body = arclient.event("account.summary.requested", {"customer_id": cid}, source=self.source, subject=cid,
                                  time_=now_text())
            props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2, user_id=self.user,
                                         reply_to=self.reply_queue, correlation_id=correlation)
            self.channel.basic_publish("ar.inbound", "account.summary.requested", arclient.encode(body), props)
            pending[correlation] = cid
        replies = {}
        deadline = time.time() + timeout
        while len(replies) < len(pending) and time.time() < deadline:
            method, props, reply = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is None:
                self.connection.process_data_events(time_limit=0.05)
                continue
            if props.correlation_id in pending:
                replies[pending[props.correlation_id]] = json.loads(reply)
        return replies

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass


def now_text():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_tag():
    alphabet = string.ascii_lowercase + string.digits
    stamp = int(time.time()) % (36 ** 4)
    text = ""
    for _ in range(4):
        stamp, r = divmod(stamp, 36)
        text = alphabet[r] + text
    return text + "".join(random.SystemRandom().choice(alphabet) for _ in range(2))


def cli(*args):
    binary = os.environ["RECEIVABLESD_BIN"]
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def filtered_cli_table(args, tag):
    """A CLI table with only this run's rows (the header kept)."""
    code, out, err = cli(*args)
    if code != 0:
        return f"  ({' '.join(args)} failed: {err.strip() or out.strip()})", 0
    lines = out.rstrip("\n").split("\n")
    header, rows = lines[0], [l for l in lines[1:] if tag in l]
    return "\n".join("  " + l.rstrip() for l in [header] + rows), len(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tag", default=None, help="run id put into every id (default: time-based, unique)")
    parser.add_argument("--out", default=".local/demo", help="where to keep the played messages and captured events")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds without new events that count as settled")
    parser.add_argument("--self-check", action="store_true", help="validate the good messages against schemas/ before playing")
    args = parser.parse_args()

    tag = args.tag or run_tag()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    scenario = generate(args.seed, tag, now)
    played = [m for phase in scenario.phases for m in phase.messages]
    log(f"run {tag}, seed {args.seed}: {len(scenario.customers)} customers, {len(scenario.invoices)} invoices, "
        f"{len(played)} messages in {len(scenario.phases)} phases ({len(scenario.bad)} deliberately bad)")
    with open(out / f"played-{tag}.jsonl", "w") as f:
        for phase in scenario.phases:
            for m in phase.messages:
                body = m.body if isinstance(m.body, dict) else m.body.decode(errors="replace")
                f.write(json.dumps({"phase": phase.key, "role": m.role, "note": m.note, "expect": m.expect, "body": body}) + "\n")
    if args.self_check:
        problems = report.self_check(scenario)
        if problems:
            for p in problems:
                print("self-check:", p)
            return 2

    # Capture first: everything the daemon publishes from now on lands in our exclusive queue.
    capture = arclient.Capture()
    publishers = {role: arclient.Publisher(role.upper()) for role in ("billing", "gateway")}
    portal = Portal(f"urn:demo:{tag}:portal")
    barrier_customer = next(iter(scenario.customers))
    held_snapshots = {}
    try:
        for phase in scenario.phases:
            t0 = time.time()
            for m in phase.messages:
                publisher = publishers[m.role]
                routing_key = m.routing_key or (m.body.get("type") if isinstance(m.body, dict) else "unknown")
                publisher.publish(m.body, routing_key=routing_key)
                capture.poll()
            # barrier: a portal request queued behind the phase, then a short quiet period
            portal.summaries([barrier_customer], timeout=60)
            capture.settle(quiet=0.8, timeout=60)
            log(f"phase {phase.key:<12} {len(phase.messages):4d} messages published and processed in {time.time() - t0:5.1f}s "
                f"({len(capture.messages)} captured so far)")
            if phase.key == "billing":
                held_snapshots[phase.title] = filtered_cli_table(["held", "list"], tag)
        capture.settle(quiet=args.quiet, timeout=90)
        log(f"settled: no new events for {args.quiet:.1f}s; {len(capture.messages)} messages captured in total")
        summaries = portal.summaries(sorted(scenario.customers), timeout=60)
        log(f"portal: {len(summaries)} of {len(scenario.customers)} account summaries answered")
    finally:
        for p in publishers.values():
            p.close()
        portal.close()
    capture.poll()
    capture.close()

    with open(out / f"captured-{tag}.jsonl", "w") as f:
        for m in capture.messages:
            f.write(json.dumps({"exchange": m.exchange, "routing_key": m.routing_key,
                                "headers": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in m.headers.items()},
                                "body": m.body.decode(errors="replace")}, default=str) + "\n")

    held_now = filtered_cli_table(["held", "list"], tag)
    dead_now = filtered_cli_table(["dead-letter", "list", "--limit", "2000"], tag)
    text = report.render(scenario, capture.messages, summaries, held_snapshots, held_now, dead_now, played,
                         elapsed=time.time() - started)
    print(text)
    (out / f"report-{tag}.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
