"""Helper for the upgrade test (issue 13): the broker as an older receivablesd left it.

  s13_upgrade.py legacy-setup       delete the intake queue (older releases had none) and declare
                                    the old single work queue as they did, bound to ar.inbound
  s13_upgrade.py legacy-status      {"exists", "messages", "consumers"} of the old work queue
  s13_upgrade.py hold-legacy SECS   an older instance still consuming: takes up to 10 messages of
                                    the old queue, acks none, leaves after SECS (they return)
"""
import os
import sys
import time

import pika

from common import Checks, DEAD_LETTERS, arclient, env

checks = Checks()
legacy, intake = env("IT_WORK_QUEUE"), env("IT_INTAKE_QUEUE")
phase = sys.argv[1]
connection = arclient.connect("ADMIN")
channel = connection.channel()

if phase == "legacy-setup":
    checks.check(legacy.startswith("ar.it") and intake.startswith("ar.it"), "refusing to touch non-test queues")
    channel.queue_delete(intake)
    channel.queue_declare(legacy, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTERS, "x-queue-type": "quorum",
                                                           "x-delivery-limit": 20})
    channel.queue_bind(legacy, "ar.inbound", "#")
    channel.queue_bind(legacy, "ar.inbound", "invoice.issued")
    checks.finish(queue=legacy)
elif phase == "legacy-status":
    try:
        ok = channel.queue_declare(legacy, passive=True).method
        checks.finish(exists=True, messages=ok.message_count, consumers=ok.consumer_count)
    except pika.exceptions.ChannelClosedByBroker as closed:
        checks.check(closed.reply_code == 404, f"passive declare failed: {closed}")
        checks.finish(exists=False, messages=0, consumers=0)
elif phase == "hold-legacy":
    seconds = float(sys.argv[2])
    taken = []
    channel.basic_qos(prefetch_count=10)
    channel.basic_consume(legacy, lambda ch, method, properties, body: taken.append(method.delivery_tag))
    deadline = time.time() + seconds
    while time.time() < deadline:
        connection.process_data_events(time_limit=0.2)
    connection.close()  # unacked: back to the queue
    checks.finish(taken=len(taken))
else:
    print(f"unknown phase {phase}", file=sys.stderr)
    sys.exit(2)
