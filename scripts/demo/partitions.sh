#!/usr/bin/env bash
# Demo part (issue 13): the partitioned intake after the day was played. Shows the topology as
# check-config explains it, which partition a few of the day's customers went to, and per
# partition the numbers routed and applied (equal once everything is applied), the queue depth
# and which consumer thread holds it. Needs RECEIVABLESD_BIN and the services environment.
set -euo pipefail
BIN="${RECEIVABLESD_BIN:?}"
echo
echo "Partitions (receivablesd check-config, receivablesd partitions)"
echo "================================================================"
"$BIN" check-config | grep -E '^(topology|partition key|partition consumers):' | sed 's/^/  /'
"$BIN" partitions | sed 's/^/  /'
