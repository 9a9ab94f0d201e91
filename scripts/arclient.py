"""A small independent AMQP client for receivablesd (pika), used by the black-box tests and
the demo the way a billing system, a gateway, a bank connector and the portal would use it.

Connection settings come from the environment written by scripts/services.sh
(RECEIVABLESD_AMQP_HOST/PORT and RECEIVABLESD_TEST_AMQP_<ROLE>_USER/_PASSWORD).
"""
import json
import os
import time
import uuid

import pika

ROLES = ("ADMIN", "BILLING", "GATEWAY", "BANK", "PORTAL", "NOTIFIER", "ARTEAM")


def credentials(role):
    role = role.upper()
    return (os.environ[f"RECEIVABLESD_TEST_AMQP_{role}_USER"], os.environ[f"RECEIVABLESD_TEST_AMQP_{role}_PASSWORD"])


def connect(role):
    user, password = credentials(role)
    params = pika.ConnectionParameters(
        host=os.environ.get("RECEIVABLESD_AMQP_HOST", "127.0.0.1"),
        port=int(os.environ["RECEIVABLESD_AMQP_PORT"]),
        credentials=pika.PlainCredentials(user, password),
        heartbeat=60,
        blocked_connection_timeout=60,
    )
    return pika.BlockingConnection(params)


def event(type_, data, source="test", id_=None, subject=None, time_="2026-11-23T10:00:00Z", **extra):
    """A CloudEvents 1.0 structured-mode event as a dict."""
    body = {"specversion": "1.0", "id": id_ or str(uuid.uuid4()), "source": source, "type": type_, "time": time_}
    if subject is not None:
        body["subject"] = subject
    body.update(extra)
    if data is not None:
        body["data"] = data
    return body


def encode(body):
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class Publisher:
    """Publishes to ar.inbound as one broker user, with publisher confirms."""

    def __init__(self, role, exchange="ar.inbound"):
        self.role = role
        self.user = credentials(role)[0]
        self.connection = connect(role)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.exchange = exchange

    def publish(self, body, routing_key=None, user_id="default", **properties):
        """Publishes body (dict, str or bytes); routing key defaults to its type."""
        if routing_key is None:
            routing_key = body.get("type", "unknown") if isinstance(body, dict) else "unknown"
        if user_id == "default":
            user_id = self.user
        properties.setdefault("content_type", "application/cloudevents+json")
        props = pika.BasicProperties(delivery_mode=2, user_id=user_id, **properties)
        self.channel.basic_publish(self.exchange, routing_key, encode(body), props)

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass


class Capture:
    """A queue bound to the outbound and dead-letter exchanges, read as admin.

    By default an exclusive server-named queue on `ar.events` and `ar.dead-letter`. Tests that
    run the daemon with private exchanges pass `events_exchange` / `dead_letter_exchange`; a
    capture that must outlive this connection (publish in one process, check in another) passes
    `queue=<name>`: a named, non-exclusive queue that `delete()` removes.
    """

    def __init__(self, bindings=None, events_exchange="ar.events", dead_letter_exchange="ar.dead-letter", queue=None,
                 queue_arguments=None):
        self.events_exchange = events_exchange
        self.dead_letter_exchange = dead_letter_exchange
        if bindings is None:
            bindings = ((events_exchange, "#"), (dead_letter_exchange, "#"))
        self.connection = connect("ADMIN")
        self.channel = self.connection.channel()
        if queue is None:
            self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        else:
            self.queue = self.channel.queue_declare(queue, durable=False, exclusive=False, auto_delete=False,
                                                     arguments=queue_arguments).method.queue
        for exchange, key in bindings:
            self.channel.exchange_declare(exchange, "topic", durable=True)
            self.channel.queue_bind(self.queue, exchange, key)
        self.messages = []

    def poll(self):
        got = 0
        while True:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return got
            self.messages.append(Message(method.exchange, method.routing_key, props, body))
            got += 1

    def wait(self, predicate, timeout=30.0):
        """Polls until predicate(messages) is true; returns the messages (raises on timeout)."""
        deadline = time.time() + timeout
        while True:
            self.poll()
            if predicate(self.messages):
                return self.messages
            if time.time() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; captured {len(self.messages)} messages: "
                                   + ", ".join(sorted({m.routing_key for m in self.messages})))
            self.connection.process_data_events(time_limit=0.1)

    def settle(self, quiet=1.5, timeout=60.0):
        """Polls until nothing new arrives for `quiet` seconds."""
        deadline = time.time() + timeout
        last = time.time()
        while time.time() < deadline:
            if self.poll():
                last = time.time()
            elif time.time() - last > quiet:
                break
            self.connection.process_data_events(time_limit=0.1)
        return self.messages

    def events(self, type_=None):
        return [m for m in self.messages if m.exchange == self.events_exchange and (type_ is None or m.routing_key == type_)]

    def dead_letters(self):
        return [m for m in self.messages if m.exchange == self.dead_letter_exchange]

    def delete(self):
        """Deletes the queue (for a named capture) and closes the connection."""
        try:
            self.channel.queue_delete(self.queue)
        finally:
            self.close()

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass


class Message:
    def __init__(self, exchange, routing_key, properties, body):
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.headers = properties.headers or {}

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def data(self):
        return self.json.get("data")

    @property
    def reason(self):
        value = self.headers.get("x-rejection-reason")
        return value.decode() if isinstance(value, bytes) else value


class Portal:
    """Request/reply as the customer portal: a private reply queue and a correlation id."""

    def __init__(self):
        self.connection = connect("PORTAL")
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.user = credentials("PORTAL")[0]
        self.last_reply_properties = None

    def request(self, type_, data, timeout=30.0, source="portal", expect_source=None):
        """Publishes a request and returns the reply's JSON body. With `expect_source`, replies
        from another responder (a different daemon `source`) are skipped. The reply's AMQP
        properties are kept in `self.last_reply_properties`."""
        correlation = str(uuid.uuid4())
        body = event(type_, data, source=source, subject=data.get("customer_id"))
        props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2, user_id=self.user,
                                     reply_to=self.reply_queue, correlation_id=correlation)
        self.channel.basic_publish("ar.inbound", type_, encode(body), props)
        deadline = time.time() + timeout
        while time.time() < deadline:
            method, props, reply = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is not None:
                if props.correlation_id == correlation:
                    parsed = json.loads(reply)
                    if expect_source is not None and parsed.get("source") != expect_source:
                        continue
                    self.last_reply_properties = props
                    return parsed
                continue
            self.connection.process_data_events(time_limit=0.1)
        raise TimeoutError(f"no reply to {type_} within {timeout}s")

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass
