#!/usr/bin/env bash
# scripts/services/with-services.sh [--label NAME] -- COMMAND [ARGS...]
#
# Starts the private PostgreSQL/RabbitMQ (scripts/services.sh start) unless they already run, loads
# .local/env.sh, runs COMMAND with that environment, and stops again exactly the services it started —
# also when COMMAND fails or the run is interrupted (EXIT/INT/TERM) — then exits with COMMAND's status.
# Used by `make test`, `make demo` and `make bench`. Pass RECEIVABLESD_FAST_DB / RECEIVABLESD_FAST_STOP
# in the environment to choose the throwaway (test) settings.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SERVICES="$ROOT/scripts/services.sh"
cd "$ROOT"

# Nothing may depend on the caller's environment beyond PATH and the documented overrides.
KEEP_RE='^RECEIVABLESD_(PORT_BASE|PG_PORT|PG2_PORT|AMQP_PORT|DIST_PORT|EPMD_PORT|MGMT_PORT|HTTP_PORT|AMQPS_PORT|RMQ_NODENAME|FAST_DB|FAST_STOP|RMQ_START_TIMEOUT)$'
for v in $(compgen -v RECEIVABLESD_); do [[ "$v" =~ $KEEP_RE ]] || unset "$v"; done
for v in $(compgen -v PG) $(compgen -v RABBITMQ_) $(compgen -v ERL_); do unset "$v"; done

started_pg=0 started_rmq=0 child="" stopping=0 label="" t0=$(date +%s)

stop_ours() {
    local rc=$?
    (( stopping )) && return; stopping=1
    # leftovers of COMMAND's process group (e.g. a daemon a test forgot): TERM them
    if [[ -n "$child" ]]; then kill -TERM -- "-$child" 2>/dev/null || true; fi
    if (( started_rmq && started_pg )); then
        bash "$SERVICES" stop
    else
        (( started_rmq )) && bash "$SERVICES" rmq-stop
        (( started_pg )) && bash "$SERVICES" pg-stop
    fi
    [[ -n "$label" ]] && echo "$label: exit status $rc after $(( $(date +%s) - t0 )) s" >&2
    return 0
}
on_signal() {
    local sig=$1 code=$2
    echo "with-services: caught SIG$sig, cleaning up" >&2
    if [[ -n "$child" ]]; then
        kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    exit "$code"        # runs the EXIT trap
}
trap 'stop_ours' EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

if [[ "${1:-}" == "--label" ]]; then label=$2; shift 2; fi
if [[ "${1:-}" == "--" ]]; then shift; fi
(( $# )) || { echo "usage: with-services.sh -- COMMAND [ARGS...]" >&2; exit 2; }

bash "$SERVICES" is-running pg  || started_pg=1
bash "$SERVICES" is-running rmq || started_rmq=1
if (( started_pg || started_rmq )); then
    bash "$SERVICES" start || { echo "with-services: could not start the services" >&2; exit 1; }
else
    echo "with-services: services already running: using them and leaving them running" >&2
    if [[ "${RECEIVABLESD_FAST_DB:-0}" == 0 ]] && grep -qx 'fsync = off' "$ROOT/.local/pg/data/receivablesd.conf" 2>/dev/null; then
        echo "with-services: note: the running PostgreSQL has fsync=off (started for tests)" >&2
    fi
fi

set -a
# shellcheck disable=SC1091
. "$ROOT/.local/env.sh"
set +a

# Run COMMAND in the background, in its own process group (set -m), and wait: a TERM/INT reaching this
# shell is then handled at once, and the whole group (swift build, swift test, daemons) is signalled.
set -m
"$@" &
child=$!
set +m
wait "$child"
rc=$?
exit "$rc"
