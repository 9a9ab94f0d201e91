#!/usr/bin/python3
"""Create/refresh the private broker's users and permissions through the management HTTP API.

Called by scripts/services.sh after the node is up. Idempotent: every user is PUT with the password
from <credentials>/amqp-<user>.password and its permissions on vhost "/"; the default guest user is
deleted. Exit 3 when the admin password is not accepted (the caller then resets it with rabbitmqctl).
Standard library only (runs with Debian's /usr/bin/python3).
"""
import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# user -> (tags, configure, write, read)
USERS = {
    "admin": ("administrator", ".*", ".*", ".*"),
    # the daemon: its exchanges/queues (ar.*), private queues, replies via the default exchange
    "receivablesd": (
        "",
        r"^(ar\..*|receivablesd\..*|amq\.gen-.*)$",
        r"^(ar\..*|receivablesd\..*|amq\.gen-.*|amq\.default)$",
        r"^(ar\..*|receivablesd\..*|amq\.gen-.*)$",
    ),
    # upstream publishers: may only publish to ar.inbound
    "billing": ("", r"^$", r"^ar\.inbound$", r"^$"),
    "gateway": ("", r"^$", r"^ar\.inbound$", r"^$"),
    "bank": ("", r"^$", r"^ar\.inbound$", r"^$"),
    # the AR team's tools: reconciliation.resolved, disputes, promises to pay
    "arteam": ("", r"^$", r"^ar\.inbound$", r"^$"),
    # customer portal: request/reply with server-named queues or direct reply-to
    "portal": (
        "",
        r"^(amq\.gen-.*|portal\..*)$",
        r"^(ar\.inbound|amq\.gen-.*|portal\..*)$",
        r"^(amq\.gen-.*|portal\..*|amq\.rabbitmq\.reply-to)$",
    ),
    # notification service: consumes ar.events through its own queues
    "notifier": ("", r"^notifier\..*$", r"^notifier\..*$", r"^(ar\.events|notifier\..*)$"),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--vhost", default="/")
    a = ap.parse_args()

    def secret(user: str) -> str:
        with open(os.path.join(a.credentials, f"amqp-{user}.password")) as f:
            return f.read().strip()

    auth = "Basic " + base64.b64encode(f"admin:{secret('admin')}".encode()).decode()
    base = f"http://127.0.0.1:{a.port}/api"

    def call(method: str, path: str, body=None, ok=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        req.add_header("Authorization", auth)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code
            raise

    # the management listener may accept connections a moment before it authenticates
    deadline = time.monotonic() + 30
    while True:
        try:
            call("GET", "/whoami")
            break
        except urllib.error.HTTPError as e:
            if e.code == 401:
                print("rmq_provision: admin credentials rejected", file=sys.stderr)
                return 3
            if time.monotonic() > deadline:
                raise
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)

    vh = urllib.parse.quote(a.vhost, safe="")
    call("PUT", f"/vhosts/{vh}", {})
    for user, (tags, conf, write, read) in USERS.items():
        call("PUT", f"/users/{user}", {"password": secret(user), "tags": tags})
        call("PUT", f"/permissions/{vh}/{user}", {"configure": conf, "write": write, "read": read})
    call("DELETE", "/users/guest", ok=(204, 404))
    return 0


if __name__ == "__main__":
    sys.exit(main())
