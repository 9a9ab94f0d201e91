/// The independent AMQP client of the operations tests (Debian python3 + pika, through
/// scripts/arclient.py), written to the test's folder and run as a separate process. Embedded
/// here so the test target needs no resources.
enum OpsClientScript {
    static let source = #"""
import json
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.environ["OPS_REPOSITORY"], "scripts"))
import arclient  # noqa: E402
import pika  # noqa: E402


def tls_connect(role, cafile):
    user, password = arclient.credentials(role)
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=int(os.environ["RECEIVABLESD_AMQPS_PORT"]),
        credentials=pika.PlainCredentials(user, password),
        ssl_options=pika.SSLOptions(context, server_hostname="localhost"),
        heartbeat=60, blocked_connection_timeout=60, connection_attempts=1, socket_timeout=10)
    return pika.BlockingConnection(params)


class TLSPublisher(arclient.Publisher):
    def __init__(self, role, cafile):
        self.role = role
        self.user = arclient.credentials(role)[0]
        self.connection = tls_connect(role, cafile)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.exchange = "ar.inbound"


def publishers():
    cache = {}
    cafile = os.environ.get("OPS_TLS_CA")

    def get(role):
        if role not in cache:
            cache[role] = TLSPublisher(role, cafile) if cafile else arclient.Publisher(role)
        return cache[role]
    return cache, get


def money(minor):
    return f"{minor // 100}.{minor % 100:02d}"


command = sys.argv[1]
if command == "capture-create":
    queue, events, dead = sys.argv[2:5]
    connection = arclient.connect("ADMIN")
    channel = connection.channel()
    channel.queue_declare(queue, durable=False, exclusive=False, auto_delete=False, arguments={"x-expires": 900_000})
    for exchange in (events, dead):
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_bind(queue, exchange, "#")
    connection.close()
    print(json.dumps({"queue": queue}))
elif command == "capture-read":
    connection = arclient.connect("ADMIN")
    channel = connection.channel()
    out = []
    while True:
        method, props, body = channel.basic_get(sys.argv[2], auto_ack=True)
        if method is None:
            break
        headers = props.headers or {}
        reason = headers.get("x-rejection-reason")
        out.append({"exchange": method.exchange, "routing_key": method.routing_key,
                    "reason": reason.decode() if isinstance(reason, bytes) else reason,
                    "body": body.decode("utf-8", "replace")})
    connection.close()
    print(json.dumps(out))
elif command == "cleanup":
    connection = arclient.connect("ADMIN")
    channel = connection.channel()
    for name in sys.argv[2:]:
        if not name.startswith("ar.ops"):
            print(f"refusing to delete {name}", file=sys.stderr)
            continue
        channel.queue_delete(name)
        channel.exchange_delete(name)
    connection.close()
    print(json.dumps({"deleted": sys.argv[2:]}))
elif command == "publish":
    # publish FILE: a JSON list of {"role": ROLE, "body": object or string}
    with open(sys.argv[2]) as f:
        items = json.load(f)
    cache, get = publishers()
    for item in items:
        get(item["role"]).publish(item["body"])
    for p in cache.values():
        p.close()
    print(json.dumps({"published": len(items)}))
elif command == "burst":
    # burst PREFIX CUSTOMER N_INVOICES N_PAYMENTS: invoices of 100.00 + i cents, then payments of 7.00
    # (no allocations) interleaved every few invoices, all with confirms.
    prefix, cid, n_inv, n_pay = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    billing = arclient.Publisher("BILLING")
    gateway = arclient.Publisher("GATEWAY")
    every = max(1, n_inv // max(1, n_pay))
    paid = 0
    for i in range(n_inv):
        billing.publish(arclient.event("invoice.issued", {
            "invoice_id": f"{prefix}-I{i}", "customer_id": cid, "number": f"{prefix}-I{i}", "currency": "USD",
            "amount": money(10000 + i), "issue_date": "2026-01-05", "due_date": "2026-03-01"}, source="billing-ops", subject=cid))
        if paid < n_pay and i % every == every - 1:
            gateway.publish(arclient.event("payment.succeeded", {
                "payment_id": f"{prefix}-P{paid}", "customer_id": cid, "currency": "USD", "amount": money(700),
                "method": "card", "received_at": "2026-02-01T10:00:00Z"}, source="gateway-ops", subject=cid))
            paid += 1
    while paid < n_pay:
        gateway.publish(arclient.event("payment.succeeded", {
            "payment_id": f"{prefix}-P{paid}", "customer_id": cid, "currency": "USD", "amount": money(700),
            "method": "card", "received_at": "2026-02-01T10:00:00Z"}, source="gateway-ops", subject=cid))
        paid += 1
    billing.close()
    gateway.close()
    print(json.dumps({"invoices": n_inv, "payments": paid}))
elif command == "tls-check":
    # tls-check CAFILE: an AMQPS connection as admin with certificate and host name verification
    try:
        connection = tls_connect("ADMIN", sys.argv[2])
        channel = connection.channel()
        channel.queue_declare("", exclusive=True)
        connection.close()
        print(json.dumps({"ok": True}))
    except Exception as error:  # noqa: BLE001
        print(json.dumps({"ok": False, "error": f"{type(error).__name__}: {error!r}"}))
        sys.exit(1)
else:
    print(f"unknown command {command}", file=sys.stderr)
    sys.exit(2)
"""#
}
