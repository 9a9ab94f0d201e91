#!/usr/bin/env bash
# The receivablesd demo (make demo): migrate, start the daemon, play a generated day of AR traffic
# through the broker as billing, gateway and portal, print what came out, and verify the books.
#
# Needs the services environment (.local/env.sh exported; make demo does it) and
# RECEIVABLESD_BIN (default: .build/release/receivablesd). Options: --seed N (default 42),
# --quiet SECONDS (settle time, default 2). Logs and artefacts: .local/demo/ (daemon.log,
# played-<run>.jsonl, captured-<run>.jsonl, report-<run>.txt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEED=42
QUIET=2
while [ $# -gt 0 ]; do
    case "$1" in
        --seed) SEED="$2"; shift 2 ;;
        --seed=*) SEED="${1#--seed=}"; shift ;;
        --quiet) QUIET="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "demo: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "${RECEIVABLESD_AMQP_PORT:-}" ] && [ -f .local/env.sh ]; then
    set -a; . ./.local/env.sh; set +a
fi
: "${RECEIVABLESD_AMQP_PORT:?demo: the services environment is missing (run via make demo, or source .local/env.sh)}"
BIN="${RECEIVABLESD_BIN:-$ROOT/.build/release/receivablesd}"
PY="${RECEIVABLESD_PYTHON:-/usr/bin/python3}"
[ -x "$BIN" ] || { echo "demo: $BIN is not built" >&2; exit 2; }
"$PY" -c 'import pika' 2>/dev/null || { echo "demo: $PY has no pika (apt-get install python3-pika)" >&2; exit 2; }
export RECEIVABLESD_BIN="$BIN"

DEMO_DIR="$ROOT/.local/demo"
mkdir -p "$DEMO_DIR"
LOG="$DEMO_DIR/daemon.log"
START=$(date +%s)
say() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

DAEMON_PID=""
stop_daemon() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        say "stopping the daemon (SIGTERM, pid $DAEMON_PID)"
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$DAEMON_PID" 2>/dev/null; then
            say "daemon did not stop within 15 s: SIGKILL"
            kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fi
        wait "$DAEMON_PID" 2>/dev/null && status=0 || status=$?
        say "daemon exited with status $status"
    fi
    DAEMON_PID=""
}
trap 'stop_daemon' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The documented dunning policies (the dunning part of the demo uses its two policies).
export RECEIVABLESD_POLICIES_FILE="${RECEIVABLESD_POLICIES_FILE:-$ROOT/config/dunning-policies.yaml}"

say "migrate"
"$BIN" migrate

say "starting the daemon ($BIN serve, log $LOG)"
: > "$LOG"
"$BIN" serve >>"$LOG" 2>&1 &
DAEMON_PID=$!
for i in $(seq 1 600); do
    if grep -q 'receivablesd ready' "$LOG"; then break; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "demo: the daemon exited before it was ready; last log lines:" >&2
        tail -n 20 "$LOG" >&2
        DAEMON_PID=""
        exit 1
    fi
    if [ "$i" = 600 ]; then echo "demo: the daemon is not ready after 60 s" >&2; tail -n 20 "$LOG" >&2; exit 1; fi
    sleep 0.1
done
say "daemon ready: $(grep -m1 'receivablesd ready' "$LOG")"

"$PY" "$ROOT/scripts/demo/play.py" --seed "$SEED" --out "$DEMO_DIR" --quiet "$QUIET"
"$PY" "$ROOT/scripts/demo/dunning.py" --seed "$SEED"    # 90 days of dunning, ticked with --now
"$PY" "$ROOT/scripts/demo/labels_and_bank_files.py"  # issue 14: gateway labels, bank files as banks write them
# The bank's day against those invoices: camt.054 + camt.053, BAI2, MT940 (scripts/demo/bank.py).
"$PY" "$ROOT/scripts/demo/bank.py" --out "$DEMO_DIR"
bash "$ROOT/scripts/demo/partitions.sh"
# Statements, payment history, aging, DSO, HTML documents and the reference portal (issue 11).
"$PY" "$ROOT/scripts/demo/statements.py" "$DEMO_DIR"

echo
echo "Verify (receivablesd verify)"
echo "============================"
set +e
"$BIN" verify >"$DEMO_DIR/verify.txt" 2>&1
VERIFY_STATUS=$?
set -e
sed 's/^/  /' "$DEMO_DIR/verify.txt"

stop_daemon
ERRORS=$(grep -c -E 'level=(error|critical)' "$LOG" || true)
echo
say "daemon log: $LOG ($(wc -l <"$LOG") lines, $ERRORS at level error/critical)"
say "demo finished in $(( $(date +%s) - START ))s"
if [ "$VERIFY_STATUS" != 0 ]; then
    say "verify FAILED (status $VERIFY_STATUS)"
    exit 1
fi
exit 0
