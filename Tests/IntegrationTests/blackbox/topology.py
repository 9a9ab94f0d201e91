"""Helper (not a scenario): `topology.py cleanup QUEUE... EXCHANGE...` deletes the private work
queue, dead-letter queue and exchanges one suite run declared (names starting with ar.it)."""
import sys

from common import Checks, arclient

checks = Checks()
if len(sys.argv) < 3 or sys.argv[1] != "cleanup":
    print("usage: topology.py cleanup NAME...", file=sys.stderr)
    sys.exit(2)
connection = arclient.connect("ADMIN")
channel = connection.channel()
deleted = []
for name in sys.argv[2:]:
    checks.check(name.startswith("ar.it"), f"refusing to delete {name}: not a private integration-test name")
    if not name.startswith("ar.it"):
        continue
    channel.queue_delete(name)  # deleting a queue that does not exist is fine in AMQP 0-9-1
    channel.exchange_delete(name)
    deleted.append(name)
connection.close()
checks.finish(deleted=deleted)
