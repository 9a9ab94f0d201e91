#!/usr/bin/env bash
# scripts/services.sh — private PostgreSQL 15 and RabbitMQ 3.10 for receivablesd development and tests.
#
#   scripts/services.sh start|stop|status|env|wait
#   scripts/services.sh pg-stop [fast|immediate] | pg-start
#   scripts/services.sh rmq-stop [graceful|kill] | rmq-start
#   scripts/services.sh purge          (stop, then delete all private state)
#   scripts/services.sh tls-setup      (TLS for the running services: AMQPS listener, PostgreSQL ssl=on)
#
# Everything lives under <checkout>/.local (PostgreSQL falls back to /tmp/receivablesd-<hash>-pg when
# the postgres user cannot traverse the checkout or the socket path would be too long), listens on
# 127.0.0.1 only, on ports derived from a hash of the checkout path. See docs/operations-dev.md.
#
# Must run as root (PostgreSQL runs as the `postgres` user via runuser; RabbitMQ runs as root).

# --- sanitize the caller's environment: nothing below may depend on it except the documented overrides ---
for __v in $(compgen -v PG) $(compgen -v RABBITMQ_) $(compgen -v ERL_); do unset "$__v"; done
unset __v ERL_LIBS ERL_FLAGS ERL_AFLAGS ERL_ZFLAGS || true

set -euo pipefail
umask 022

S_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
S_LOCAL="$S_ROOT/.local"
S_SELF="$S_ROOT/scripts/services.sh"
S_HELPERS="$S_ROOT/scripts/services"
S_PG_BIN=/usr/lib/postgresql/15/bin
S_RMQ_BIN=/usr/lib/rabbitmq/bin
S_PYTHON=/usr/bin/python3
S_CREDS="$S_LOCAL/credentials"
S_RMQ="$S_LOCAL/rmq"
S_RUNENV="$S_LOCAL/run.env"
S_TLS="$S_LOCAL/tls"                          # throwaway CA, server and client certificates (see tls_ensure)
S_ENVSH="$S_LOCAL/env.sh"
S_MARK="RECEIVABLESD_SERVICES_DIR=$S_LOCAL"   # put into the environment of every RabbitMQ/epmd process we start

S_CKSUM=$(printf '%s' "$S_ROOT" | cksum | cut -d' ' -f1)
S_HASH=$(printf '%08x' "$S_CKSUM")

AMQP_USERS=(admin receivablesd billing gateway bank portal notifier arteam)

log()  { printf 'services: %s\n' "$*" >&2; }
die()  { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# ----------------------------------------------------------------------------------------------------
# configuration: ports, node name, folders
# ----------------------------------------------------------------------------------------------------
is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1024 && $1 <= 65535 )); }

# Requested configuration, from the environment overrides and the checkout hash.
requested_config() {
    local base=${RECEIVABLESD_PORT_BASE:-$((20000 + (S_CKSUM % 400) * 10))}
    [[ "$base" =~ ^[0-9]+$ ]] && (( base >= 1024 && base <= 65525 )) || die "RECEIVABLESD_PORT_BASE=$base is not a usable port base"
    PORT_BASE=$base
    PG_PORT=${RECEIVABLESD_PG_PORT:-$base}
    AMQP_PORT=${RECEIVABLESD_AMQP_PORT:-$((base + 1))}
    DIST_PORT=${RECEIVABLESD_DIST_PORT:-$((base + 2))}
    EPMD_PORT=${RECEIVABLESD_EPMD_PORT:-$((base + 3))}
    MGMT_PORT=${RECEIVABLESD_MGMT_PORT:-$((base + 4))}
    HTTP_PORT=${RECEIVABLESD_HTTP_PORT:-$((base + 5))}
    AMQPS_PORT=${RECEIVABLESD_AMQPS_PORT:-$((base + 6))}
    PG2_PORT=${RECEIVABLESD_PG2_PORT:-$((base + 7))}
    PORTAL_PORT=${RECEIVABLESD_PORTAL_PORT:-$((base + 8))}   # the reference portal page (demo, tests)
    # rabbitmqctl & co. open their own Erlang distribution listener: keep it private too (2 ports).
    CTL_PORT_MIN=$((DIST_PORT + 6)); CTL_PORT_MAX=$((DIST_PORT + 7))
    RMQ_NODENAME=${RECEIVABLESD_RMQ_NODENAME:-receivablesd-$S_HASH@localhost}
    local p
    for p in PG_PORT AMQP_PORT DIST_PORT EPMD_PORT MGMT_PORT HTTP_PORT AMQPS_PORT PG2_PORT PORTAL_PORT; do
        is_port "${!p}" || die "$p=${!p} is not a valid port (1024..65535)"
    done
    PG_DIR=$(choose_pg_dir)
    FAST_DB=${RECEIVABLESD_FAST_DB:-0}
    FAST_STOP=${RECEIVABLESD_FAST_STOP:-0}
}

# PostgreSQL folder: .local/pg unless postgres cannot traverse the checkout or the socket path is too long.
choose_pg_dir() {
    local d="$S_LOCAL/pg"
    local sock="$d/.s.PGSQL.65535"
    if (( ${#sock} > 100 )) || ! runuser -u postgres -- test -x "$S_ROOT" 2>/dev/null; then
        d="/tmp/receivablesd-$S_HASH-pg"
    fi
    printf '%s' "$d"
}

# The configuration a running instance was started with (written by start).
load_recorded() {
    [[ -f "$S_RUNENV" ]] || return 1
    # shellcheck disable=SC1090
    source "$S_RUNENV"
    return 0
}

record_config() {
    mkdir -p "$S_LOCAL"
    local tmp="$S_RUNENV.tmp.$$" v
    : > "$tmp"
    for v in PORT_BASE PG_PORT AMQP_PORT DIST_PORT EPMD_PORT MGMT_PORT HTTP_PORT AMQPS_PORT PG2_PORT PORTAL_PORT \
             CTL_PORT_MIN CTL_PORT_MAX RMQ_NODENAME PG_DIR FAST_DB FAST_STOP; do
        printf '%s=%q\n' "$v" "${!v}" >> "$tmp"
    done
    mv -f "$tmp" "$S_RUNENV"
}

derive_paths() {
    PG_DATA="$PG_DIR/data"
    PG_LOG="$PG_DIR/postgres.log"
    RMQ_ENV="$S_RMQ/env.sh"
    RMQ_LOG_DIR="$S_RMQ/log"
    RMQ_PIDFILE="$S_RMQ/rabbit.pid"      # written by the broker, deleted by it at the start of shutdown
    RMQ_BEAMPID="$S_RMQ/beam.pid"        # our copy
    RMQ_WRAPPID="$S_RMQ/wrapper.pid"
    EPMD_PIDFILE="$S_RMQ/epmd.pid"
}

# ----------------------------------------------------------------------------------------------------
# process ownership
# ----------------------------------------------------------------------------------------------------
# alive and not a zombie (PID 1 here may reap orphans late, and kill -0 succeeds on zombies)
alive() {
    [[ -n "${1:-}" && "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
    local st; st=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}
gone() { ! alive "$1"; }
all_gone() { local p; for p in "$@"; do alive "$p" && return 1; done; return 0; }
read_pid() { [[ -f "$1" ]] && head -n1 "$1" 2>/dev/null | tr -dc '0-9' || true; }
has_marker() { [[ -r /proc/$1/environ ]] && tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | grep -qxF "$S_MARK"; }
cmdline_of() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null || true; }

# a PostgreSQL process is ours when its working directory is our data folder (postgres chdirs there)
pg_owned() { alive "$1" && [[ "$(readlink "/proc/$1/cwd" 2>/dev/null)" == "$(readlink -f "$PG_DATA" 2>/dev/null || echo "$PG_DATA")" ]]; }
beam_owned() { alive "$1" && has_marker "$1" && [[ "$(cmdline_of "$1")" == *"$RMQ_NODENAME"* || "$(cmdline_of "$1")" == *"$S_RMQ"* ]]; }
wrapper_owned() { alive "$1" && has_marker "$1"; }
epmd_owned() {
    alive "$1" || return 1
    local c; c=$(cmdline_of "$1")
    [[ "$c" == *epmd* ]] && { [[ "$c" == *"-port $EPMD_PORT "* ]] || has_marker "$1"; }
}

# processes carrying our marker whose command is one of the given names (used for sweeping leftovers)
marked_pids() {
    local f pid comm
    for f in $(grep -lzxF "$S_MARK" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${f#/proc/}; pid=${pid%/environ}
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        for n in "$@"; do if [[ "$comm" == "$n" ]]; then echo "$pid"; break; fi; done
    done
    return 0
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_in_use() {
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; then return 0; fi
    tcp_open "$1"
}
require_free() { # PORT VAR-NAME
    if port_in_use "$1"; then
        local who=""
        command -v ss >/dev/null 2>&1 && who=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n1 | sed -n 's/.*users:((\(.*\)))/\1/p')
        die "port $1 (${2}) is already in use${who:+ by $who}; choose another with ${2}=<port> or RECEIVABLESD_PORT_BASE=<base> (base..base+8 are used)"
    fi
}

wait_until() { # TIMEOUT_S CMD... : poll every 0.1 s
    local deadline=$(( $(now_ms) + $1 * 1000 )); shift
    until "$@"; do (( $(now_ms) < deadline )) || return 1; sleep 0.1; done
}

# run a command as root with the private RabbitMQ environment
rmq_cmd() { ( set +u; . "$RMQ_ENV"; exec "$@" ); }

# ----------------------------------------------------------------------------------------------------
# credentials
# ----------------------------------------------------------------------------------------------------
gen_secret() { od -An -tx1 -N20 /dev/urandom | tr -d ' \n'; }
CREDS_CHANGED=0
ensure_secret() { # FILE
    local f="$S_CREDS/$1"
    if [[ -s "$f" ]] && grep -qxE '[0-9a-f]{32,}' "$f"; then chmod 600 "$f"; return; fi
    local tmp="$f.tmp.$$"
    ( umask 077; gen_secret > "$tmp" ); mv -f "$tmp" "$f"; chmod 600 "$f"
    CREDS_CHANGED=1
}
ensure_credentials() {
    mkdir -p "$S_CREDS"; chmod 700 "$S_CREDS"
    rm -f "$S_CREDS"/*.tmp.* 2>/dev/null || true
    ensure_secret db-password
    local u; for u in "${AMQP_USERS[@]}"; do ensure_secret "amqp-$u.password"; done
    # alias in the name a systemd LoadCredential=amqp-password would use
    if ! cmp -s "$S_CREDS/amqp-receivablesd.password" "$S_CREDS/amqp-password" 2>/dev/null; then
        ( umask 077; cp -f "$S_CREDS/amqp-receivablesd.password" "$S_CREDS/amqp-password" ); chmod 600 "$S_CREDS/amqp-password"
    fi
}
secret() { cat "$S_CREDS/$1" 2>/dev/null || true; }

# ----------------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------------
pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }
pg_ready() { "$S_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null 2>&1; }
pg_running() { local p; p=$(pg_pid); pg_owned "$p" && pg_ready; }
as_pg() { ( cd / && runuser -u postgres -- "$@" ); }

pg_tail_log() { [[ -f "$PG_LOG" ]] && { log "last lines of $PG_LOG:"; tail -n 30 "$PG_LOG" >&2; } || true; }

pg_write_conf() {
    local fsync=on sync=on fpw=on
    if [[ "$FAST_DB" == 1 ]]; then fsync=off; sync=off; fpw=off; fi
    cat > "$PG_DATA/receivablesd.conf" <<EOF
# written by scripts/services.sh on every start — edit the script, not this file
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
fsync = $fsync
synchronous_commit = $sync
full_page_writes = $fpw
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
# statement statistics for the benchmarks and for finding slow statements (SELECT * FROM pg_stat_statements)
shared_preload_libraries = 'pg_stat_statements'
EOF
    pg_write_tls_conf
    # password authentication for every role except the postgres superuser (trust, loopback only)
    cat > "$PG_DATA/pg_hba.conf" <<EOF
# written by scripts/services.sh — loopback only
local   all          postgres                 trust
local   all          all                      scram-sha-256
host    all          postgres  127.0.0.1/32   trust
host    all          all       127.0.0.1/32   scram-sha-256
host    all          postgres  ::1/128        trust
host    all          all       ::1/128        scram-sha-256
local   replication  all                      trust
host    replication  all       127.0.0.1/32   trust
EOF
    chown postgres:postgres "$PG_DATA/receivablesd.conf" "$PG_DATA/pg_hba.conf"
    chmod 600 "$PG_DATA/receivablesd.conf" "$PG_DATA/pg_hba.conf"
}

pg_clean_stale() {
    local p; p=$(pg_pid)
    if [[ -n "$p" ]] && ! pg_owned "$p"; then
        log "removing stale $PG_DATA/postmaster.pid (PID $p is gone or not ours)"
        rm -f "$PG_DATA/postmaster.pid"
    fi
    # orphaned backends of a killed postmaster keep the shared memory attached: let them go
    if [[ ! -f "$PG_DATA/postmaster.pid" ]]; then
        local left=() q
        for q in $(pgrep -u postgres 2>/dev/null || true); do pg_owned "$q" && left+=("$q"); done
        if (( ${#left[@]} )); then
            log "waiting for ${#left[@]} orphaned PostgreSQL process(es) of our data folder to exit"
            wait_until 5 all_gone "${left[@]}" \
                || { kill -KILL "${left[@]}" 2>/dev/null || true; sleep 0.2; }
        fi
        rm -f "$PG_DIR"/.s.PGSQL.*
    fi
    return 0
}

pg_start() {
    [[ -x "$S_PG_BIN/pg_ctl" ]] || die "PostgreSQL 15 is not installed ($S_PG_BIN/pg_ctl missing): run 'make deps'"
    id postgres >/dev/null 2>&1 || die "user 'postgres' does not exist: run 'make deps'"
    mkdir -p "$PG_DIR"; chown postgres:postgres "$PG_DIR"; chmod 700 "$PG_DIR"
    if [[ "$PG_DIR" != "$S_LOCAL/pg" && ( -L "$S_LOCAL/pg" || ! -e "$S_LOCAL/pg" ) ]]; then ln -sfn "$PG_DIR" "$S_LOCAL/pg"; fi

    local p; p=$(pg_pid)
    if pg_owned "$p"; then
        if wait_until 30 pg_ready; then PG_WAS_RUNNING=1; return 0; fi
        log "our PostgreSQL (PID $p) does not answer: stopping it"
        as_pg "$S_PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 9>&- || kill -KILL "$p" 2>/dev/null || true
        sleep 0.3
    fi
    pg_clean_stale

    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        local t0; t0=$(now_ms)
        rm -rf "$PG_DATA" "$PG_DATA.init"
        as_pg "$S_PG_BIN/initdb" -D "$PG_DATA.init" -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N \
            > "$PG_DIR/initdb.log" 2>&1 9>&- || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
        echo "include_if_exists = 'receivablesd.conf'" >> "$PG_DATA.init/postgresql.conf"
        mv "$PG_DATA.init" "$PG_DATA"
        log "initialised $PG_DATA in $(( $(now_ms) - t0 )) ms"
    fi
    require_free "$PG_PORT" RECEIVABLESD_PG_PORT
    pg_write_conf
    if ! as_pg "$S_PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 120 start >/dev/null 9>&-; then
        pg_tail_log; die "PostgreSQL did not start on 127.0.0.1:$PG_PORT"
    fi
    wait_until 30 pg_ready || { pg_tail_log; die "PostgreSQL started but does not accept connections on 127.0.0.1:$PG_PORT"; }
    PG_WAS_RUNNING=0
}

pg_provision() {
    local pw; pw=$(secret db-password)
    "$S_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<EOF
\\set pw '$pw'
SELECT format('CREATE ROLE receivablesd LOGIN CREATEDB PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'receivablesd') \\gexec
ALTER ROLE receivablesd WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE receivablesd OWNER receivablesd'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'receivablesd') \\gexec
EOF
}

pg_stop() { # [fast|immediate]
    local mode=${1:-fast} p; p=$(pg_pid)
    if pg_owned "$p"; then
        as_pg "$S_PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 stop >/dev/null 9>&- \
            || { log "pg_ctl stop failed; killing PID $p"; kill -KILL "$p" 2>/dev/null || true; }
        wait_until 10 gone "$p" || true
        log "PostgreSQL stopped"
    fi
    [[ -d "$PG_DATA" ]] && pg_clean_stale
    return 0
}

# ----------------------------------------------------------------------------------------------------
# RabbitMQ (+ its own epmd)
# ----------------------------------------------------------------------------------------------------
rmq_write_files() {
    mkdir -p "$S_RMQ"/{home,etc,mnesia,log}
    chmod 700 "$S_RMQ/home"
    : > "$S_RMQ/etc/rabbitmq-env.conf"
    echo '[rabbitmq_management].' > "$S_RMQ/etc/enabled_plugins"
    if [[ ! -s "$S_RMQ/home/.erlang.cookie" ]] || ! grep -qxE '[A-Z]{20}' "$S_RMQ/home/.erlang.cookie"; then
        rm -f "$S_RMQ/home/.erlang.cookie"
        ( umask 077; head -c 200 /dev/urandom | tr -dc 'A-Z' | head -c 20 > "$S_RMQ/home/.erlang.cookie" )
        chmod 400 "$S_RMQ/home/.erlang.cookie"
    fi
    local tmp="$S_RMQ/etc/rabbitmq.conf.tmp"
    ( umask 077; cat > "$tmp" <<EOF
# written by scripts/services.sh on every start
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $MGMT_PORT
loopback_users = none
log.console = false
log.file.level = info
# only used on the very first boot of a fresh node: no guest user, an administrator instead
default_user = admin
default_pass = $(secret amqp-admin.password)
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
# tests read queue counters through the HTTP API: refresh them every second (default 5 s)
collect_statistics_interval = 1000
disk_free_limit.absolute = 20MB
EOF
      rmq_tls_conf >> "$tmp"
    ); mv -f "$tmp" "$S_RMQ/etc/rabbitmq.conf"
    cat > "$RMQ_ENV" <<EOF
# source this (in a subshell) to run rabbitmqctl / rabbitmq-diagnostics against the private node:
#   ( . "\$RECEIVABLESD_RMQ_ENV"; rabbitmqctl list_queues )
export $S_MARK
export PATH=$S_RMQ_BIN:\$PATH
export HOME=$S_RMQ/home
export RABBITMQ_CONF_ENV_FILE=$S_RMQ/etc/rabbitmq-env.conf
export RABBITMQ_CONFIG_FILE=$S_RMQ/etc/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$S_RMQ/etc/advanced.config
export RABBITMQ_ENABLED_PLUGINS_FILE=$S_RMQ/etc/enabled_plugins
export RABBITMQ_MNESIA_BASE=$S_RMQ/mnesia
export RABBITMQ_LOG_BASE=$RMQ_LOG_DIR
export RABBITMQ_PID_FILE=$RMQ_PIDFILE
export RABBITMQ_NODENAME=$RMQ_NODENAME
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$AMQP_PORT
export RABBITMQ_DIST_PORT=$DIST_PORT
export RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT_MIN
export RABBITMQ_CTL_DIST_PORT_MAX=$CTL_PORT_MAX
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_ADDRESS=127.0.0.1
EOF
}

beam_pid() {
    local p; p=$(read_pid "$RMQ_BEAMPID")
    beam_owned "$p" && { echo "$p"; return; }
    p=$(read_pid "$RMQ_PIDFILE")
    beam_owned "$p" && { echo "$p"; return; }
    # last resort: a broker beam carrying our marker (e.g. PID files lost)
    for p in $(marked_pids beam.smp); do
        [[ "$(cmdline_of "$p")" == *"-s rabbit boot"* || "$(cmdline_of "$p")" == *"rabbit boot"* ]] && beam_owned "$p" && { echo "$p"; return; }
    done
    true
}
epmd_pid() { local p; p=$(read_pid "$EPMD_PIDFILE"); epmd_owned "$p" && echo "$p" || true; }
rmq_answering() { tcp_open "$AMQP_PORT" && tcp_open "$MGMT_PORT"; }
rmq_running() { [[ -n "$(beam_pid)" ]] && rmq_answering; }

rmq_tail_log() {
    local f
    for f in "$RMQ_LOG_DIR/$RMQ_NODENAME.log" "$RMQ_LOG_DIR/server.out"; do
        [[ -s "$f" ]] && { log "last lines of $f:"; tail -n 25 "$f" >&2; }
    done
    true
}

epmd_start() {
    [[ -n "$(epmd_pid)" ]] && return 0
    rm -f "$EPMD_PIDFILE"
    require_free "$EPMD_PORT" RECEIVABLESD_EPMD_PORT
    local epmd; epmd=$(command -v epmd || true)
    [[ -n "$epmd" ]] || epmd=$(ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -n1)
    [[ -x "$epmd" ]] || die "epmd not found: run 'make deps'"
    ( export "$S_MARK"; cd "$S_RMQ"; exec setsid "$epmd" -port "$EPMD_PORT" -address 127.0.0.1 ) \
        </dev/null >>"$RMQ_LOG_DIR/epmd.log" 2>&1 9>&- &
    echo $! > "$EPMD_PIDFILE"
    wait_until 10 tcp_open "$EPMD_PORT" || die "epmd did not open 127.0.0.1:$EPMD_PORT (see $RMQ_LOG_DIR/epmd.log)"
}

rmq_kill_leftovers() { # sweep beam/epmd helpers that carry our marker (after the broker is gone)
    local p pids
    pids=$(marked_pids beam.smp erl_child_setup inet_gethost epmd rabbitmq-server)
    for p in $pids; do
        [[ "$p" == "$(read_pid "$EPMD_PIDFILE")" ]] && continue
        log "killing leftover $(cat /proc/$p/comm 2>/dev/null) PID $p"
        kill -KILL "$p" 2>/dev/null || true
    done
}

rmq_start() {
    [[ -x "$S_RMQ_BIN/rabbitmq-server" ]] || die "RabbitMQ is not installed ($S_RMQ_BIN/rabbitmq-server missing): run 'make deps'"
    mkdir -p "$S_RMQ/log"
    local b; b=$(beam_pid)
    if [[ -n "$b" ]]; then
        if wait_until 60 rmq_answering; then
            [[ -s "$RMQ_BEAMPID" ]] || echo "$b" > "$RMQ_BEAMPID"
            RMQ_WAS_RUNNING=1; return 0
        fi
        log "our RabbitMQ (PID $b) does not answer: killing it"
        kill -KILL "$b" 2>/dev/null || true
        wait_until 10 gone "$b" || true
    fi
    # stale state from a killed run
    local w; w=$(read_pid "$RMQ_WRAPPID")
    wrapper_owned "$w" && kill -KILL "$w" 2>/dev/null || true
    rm -f "$RMQ_PIDFILE" "$RMQ_BEAMPID" "$RMQ_WRAPPID"
    rmq_kill_leftovers
    [[ -n "$(epmd_pid)" ]] || { local e; e=$(read_pid "$EPMD_PIDFILE"); [[ -n "$e" ]] && log "removing stale epmd PID file ($e is gone or not ours)"; rm -f "$EPMD_PIDFILE"; }

    require_free "$AMQP_PORT" RECEIVABLESD_AMQP_PORT
    require_free "$DIST_PORT" RECEIVABLESD_DIST_PORT
    require_free "$MGMT_PORT" RECEIVABLESD_MGMT_PORT
    if tls_present; then require_free "$AMQPS_PORT" RECEIVABLESD_AMQPS_PORT; fi
    rmq_write_files
    epmd_start

    local t0; t0=$(now_ms)
    ( set +u; . "$RMQ_ENV"; cd "$S_RMQ"; exec setsid "$S_RMQ_BIN/rabbitmq-server" ) \
        </dev/null >>"$RMQ_LOG_DIR/server.out" 2>&1 9>&- &
    local wpid=$!
    echo "$wpid" > "$RMQ_WRAPPID"
    # copy the beam PID aside as soon as it appears (the broker deletes its PID file when it stops)
    local deadline=$(( $(now_ms) + 60000 )) bp=""
    while :; do
        bp=$(read_pid "$RMQ_PIDFILE")
        [[ -n "$bp" ]] && alive "$bp" && { echo "$bp" > "$RMQ_BEAMPID"; break; }
        alive "$wpid" || { rmq_tail_log; die "rabbitmq-server exited during start-up"; }
        (( $(now_ms) < deadline )) || { rmq_tail_log; die "RabbitMQ wrote no PID file within 60 s"; }
        sleep 0.05
    done
    deadline=$(( $(now_ms) + ${RECEIVABLESD_RMQ_START_TIMEOUT:-120} * 1000 ))
    until tcp_open "$AMQP_PORT"; do
        alive "$bp" || { rmq_tail_log; die "RabbitMQ (beam PID $bp) died during start-up"; }
        (( $(now_ms) < deadline )) || { rmq_tail_log; die "RabbitMQ did not open 127.0.0.1:$AMQP_PORT in time"; }
        sleep 0.1
    done
    rmq_cmd rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 \
        || { rmq_tail_log; die "rabbitmqctl await_startup failed for $RMQ_NODENAME"; }
    wait_until 30 tcp_open "$MGMT_PORT" || { rmq_tail_log; die "management plugin did not open 127.0.0.1:$MGMT_PORT"; }
    log "RabbitMQ $RMQ_NODENAME up in $(( $(now_ms) - t0 )) ms (beam PID $bp)"
    RMQ_WAS_RUNNING=0
}

rmq_provision() {
    local rc=0
    "$S_PYTHON" "$S_HELPERS/rmq_provision.py" --port "$MGMT_PORT" --credentials "$S_CREDS" || rc=$?
    if (( rc == 3 )); then   # admin password unknown to the node (credentials lost): reset it with rabbitmqctl
        log "resetting the broker's admin user through rabbitmqctl"
        local pw; pw=$(secret amqp-admin.password)
        rmq_cmd rabbitmqctl -q add_user admin "$pw" >/dev/null 2>&1 || rmq_cmd rabbitmqctl -q change_password admin "$pw" >/dev/null
        rmq_cmd rabbitmqctl -q set_user_tags admin administrator >/dev/null
        rmq_cmd rabbitmqctl -q set_permissions -p / admin '.*' '.*' '.*' >/dev/null
        "$S_PYTHON" "$S_HELPERS/rmq_provision.py" --port "$MGMT_PORT" --credentials "$S_CREDS"
    elif (( rc != 0 )); then
        die "provisioning broker users failed"
    fi
}

rmq_stop() { # [graceful|kill]
    local how=${1:-}
    [[ -z "$how" ]] && { [[ "$FAST_STOP" == 1 ]] && how=kill || how=graceful; }
    local b w t0; b=$(beam_pid); w=$(read_pid "$RMQ_WRAPPID"); t0=$(now_ms)
    wrapper_owned "$w" || w=""
    if [[ -n "$b" ]]; then
        if [[ "$how" == kill ]]; then
            kill -KILL "$b" 2>/dev/null || true
        elif [[ -n "$w" ]]; then
            kill -TERM "$w" 2>/dev/null || true
        else
            kill -TERM "$b" 2>/dev/null || true
        fi
        if ! wait_until 60 gone "$b"; then
            log "RabbitMQ did not stop within 60 s: killing beam PID $b"; kill -KILL "$b" 2>/dev/null || true
            wait_until 5 gone "$b" || true
        fi
        log "RabbitMQ stopped ($how) in $(( $(now_ms) - t0 )) ms"
    fi
    [[ -n "$w" ]] && { wait_until 5 gone "$w" || kill -KILL "$w" 2>/dev/null || true; }
    local e; e=$(epmd_pid)
    if [[ -n "$e" ]]; then
        kill -TERM "$e" 2>/dev/null || true
        wait_until 5 gone "$e" || kill -KILL "$e" 2>/dev/null || true
    fi
    rm -f "$EPMD_PIDFILE" "$RMQ_WRAPPID" "$RMQ_BEAMPID" "$RMQ_PIDFILE"
    rmq_kill_leftovers
    return 0
}

# ----------------------------------------------------------------------------------------------------
# TLS (development/test only): a throwaway CA in .local/tls signs a server certificate for
# localhost/127.0.0.1 and a client certificate. When the files exist, RabbitMQ also listens with TLS
# on the AMQPS port and PostgreSQL runs with ssl=on; plain connections keep working on both.
# ----------------------------------------------------------------------------------------------------
tls_present() { [[ -s "$S_TLS/ca.pem" && -s "$S_TLS/server.pem" && -s "$S_TLS/server.key" ]]; }

tls_valid() { # complete, chains to the CA, valid for more than a day
    tls_present && [[ -s "$S_TLS/client.pem" && -s "$S_TLS/client.key" ]] || return 1
    openssl verify -CAfile "$S_TLS/ca.pem" "$S_TLS/server.pem" "$S_TLS/client.pem" >/dev/null 2>&1 || return 1
    openssl x509 -checkend 86400 -noout -in "$S_TLS/server.pem" >/dev/null 2>&1
}

tls_generate() {
    local d="$S_TLS.new.$$" t0 out="$S_LOCAL/tls-openssl.log"; t0=$(now_ms)
    rm -rf "$d"; mkdir -p "$d"
    # (set -e has no effect in a subshell whose status is tested: the result is verified below instead)
    ( umask 077; cd "$d" || exit 1
        printf '%s\n' "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" "subjectKeyIdentifier=hash" > ca.ext
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key
        openssl req -new -key ca.key -subj "/O=receivablesd development/CN=receivablesd dev CA $S_HASH" -out ca.csr
        openssl x509 -req -in ca.csr -signkey ca.key -days 3650 -extfile ca.ext -out ca.pem
        for who in server client; do
            if [[ $who == server ]]; then eku=serverAuth; cn=localhost; san="subjectAltName=DNS:localhost,IP:127.0.0.1"
            else eku=clientAuth; cn=receivablesd; san="subjectAltName=DNS:receivablesd"; fi
            printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=$eku" "$san" "authorityKeyIdentifier=keyid" > "$who.ext"
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$who.key"
            openssl req -new -key "$who.key" -subj "/O=receivablesd development/CN=$cn" -out "$who.csr"
            openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile "$who.ext" -out "$who.pem"
        done
        rm -f ./*.csr ./*.ext ./*.srl
        chmod 644 ca.pem server.pem client.pem
        chmod 600 ca.key server.key client.key
    ) >"$out" 2>&1 || true
    if ! [[ -s "$d/ca.key" && -s "$d/server.key" && -s "$d/client.key" ]] \
        || ! openssl verify -CAfile "$d/ca.pem" "$d/server.pem" "$d/client.pem" >>"$out" 2>&1; then
        cat "$out" >&2; rm -rf "$d"; die "generating TLS certificates failed (openssl output above)"
    fi
    chmod 755 "$d"
    rm -rf "$S_TLS"; mv "$d" "$S_TLS"; rm -f "$out"
    log "generated a throwaway CA and server/client certificates in $S_TLS in $(( $(now_ms) - t0 )) ms"
}

tls_ensure() { # (re)generate the TLS material when missing or invalid, unless RECEIVABLESD_TLS=0 or no openssl
    [[ "${RECEIVABLESD_TLS:-1}" == 0 ]] && return 0
    command -v openssl >/dev/null 2>&1 || { log "openssl not found: no TLS listeners"; return 0; }
    tls_valid && return 0
    tls_generate
}

rmq_tls_conf() { # lines appended to rabbitmq.conf when the TLS material exists
    tls_present || return 0
    cat <<EOF
# TLS (see scripts/services.sh tls-setup): client certificates verified when presented, not required
listeners.ssl.default = 127.0.0.1:$AMQPS_PORT
ssl_options.cacertfile = $S_TLS/ca.pem
ssl_options.certfile = $S_TLS/server.pem
ssl_options.keyfile = $S_TLS/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
EOF
}

pg_write_tls_conf() { # appended to receivablesd.conf; the key must be owned by postgres with mode 600
    tls_present || return 0
    install -o postgres -g postgres -m 600 "$S_TLS/server.key" "$PG_DATA/server.key"
    install -o postgres -g postgres -m 644 "$S_TLS/server.pem" "$PG_DATA/server.crt"
    install -o postgres -g postgres -m 644 "$S_TLS/ca.pem" "$PG_DATA/root.crt"
    cat >> "$PG_DATA/receivablesd.conf" <<EOF
# TLS (see scripts/services.sh tls-setup); plain connections stay allowed (pg_hba "host" lines)
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'root.crt'
EOF
}

# Adds the TLS listener to a running broker without a restart (rabbitmq.conf has it from the next start).
rmq_tls_hot_add() {
    local expr
    expr="application:set_env(rabbit, ssl_options, [{cacertfile,\"$S_TLS/ca.pem\"},{certfile,\"$S_TLS/server.pem\"},{keyfile,\"$S_TLS/server.key\"},{verify,verify_peer},{fail_if_no_peer_cert,false}]), rabbit_networking:start_ssl_listener({\"127.0.0.1\", $AMQPS_PORT}, rabbit_networking:ensure_ssl(), 10)."
    rmq_cmd rabbitmqctl -q eval "$expr" >/dev/null 2>&1 && wait_until 10 tcp_open "$AMQPS_PORT"
}

cmd_tls_setup() { # TLS material; PostgreSQL ssl=on (reload, no restart); the AMQPS listener (added live, else restart)
    require_root; take_lock; select_config other
    command -v openssl >/dev/null 2>&1 || die "openssl is not installed: run 'make deps'"
    RECEIVABLESD_TLS=1 tls_ensure
    local p; p=$(pg_pid)
    if pg_owned "$p"; then
        if grep -qx 'fsync = off' "$PG_DATA/receivablesd.conf" 2>/dev/null; then FAST_DB=1; else FAST_DB=0; fi
        local before; before=$({ cat "$PG_DATA/receivablesd.conf" "$PG_DATA/server.crt" 2>/dev/null || true; } | cksum)
        pg_write_conf
        if [[ "$({ cat "$PG_DATA/receivablesd.conf" "$PG_DATA/server.crt" 2>/dev/null || true; } | cksum)" != "$before" ]]; then
            as_pg "$S_PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null 9>&- || die "pg_ctl reload failed"
        fi
        local ssl="" i
        for i in 1 2 3 4 5 6 7 8 9 10; do
            ssl=$("$S_PG_BIN/psql" -X -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'SHOW ssl' 2>/dev/null || true)
            [[ "$ssl" == on ]] && break; sleep 0.2
        done
        [[ "$ssl" == on ]] || { pg_tail_log; die "PostgreSQL did not enable ssl (SHOW ssl = '$ssl')"; }
        log "PostgreSQL 127.0.0.1:$PG_PORT: ssl=on, server certificate $S_TLS/server.pem"
    else
        log "PostgreSQL is not running: ssl=on from its next start"
    fi
    if [[ -n "$(beam_pid)" ]]; then
        rmq_write_files
        if ! tcp_open "$AMQPS_PORT"; then
            if rmq_tls_hot_add; then
                log "RabbitMQ: TLS listener added on 127.0.0.1:$AMQPS_PORT without a restart"
            else
                log "RabbitMQ: adding the TLS listener at run time failed; restarting the broker"
                rmq_stop ""; rmq_start; rmq_provision
                tcp_open "$AMQPS_PORT" || { rmq_tail_log; die "RabbitMQ did not open its TLS listener on 127.0.0.1:$AMQPS_PORT"; }
            fi
        fi
        log "RabbitMQ: amqps://127.0.0.1:$AMQPS_PORT, CA $S_TLS/ca.pem"
    else
        log "RabbitMQ is not running: TLS listener from its next start"
    fi
    write_envsh
}

# ----------------------------------------------------------------------------------------------------
# env
# ----------------------------------------------------------------------------------------------------
emit_env() {
    local kv=(
        PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=postgres PGDATABASE=receivablesd
        RECEIVABLESD_DB_HOST=127.0.0.1 RECEIVABLESD_DB_PORT="$PG_PORT" RECEIVABLESD_DB_NAME=receivablesd
        RECEIVABLESD_DB_USER=receivablesd RECEIVABLESD_DB_PASSWORD="$(secret db-password)"
        RECEIVABLESD_AMQP_HOST=127.0.0.1 RECEIVABLESD_AMQP_PORT="$AMQP_PORT"
        RECEIVABLESD_AMQP_USER=receivablesd RECEIVABLESD_AMQP_PASSWORD="$(secret amqp-receivablesd.password)"
        RECEIVABLESD_AMQP_VHOST=/
        RECEIVABLESD_HTTP_PORT="$HTTP_PORT" RECEIVABLESD_MGMT_PORT="$MGMT_PORT" RECEIVABLESD_AMQPS_PORT="$AMQPS_PORT"
        RECEIVABLESD_PORTAL_PORT="$PORTAL_PORT"
    )
    local r u
    for u in admin billing gateway bank portal notifier arteam; do
        r=${u^^}
        kv+=("RECEIVABLESD_TEST_AMQP_${r}_USER=$u" "RECEIVABLESD_TEST_AMQP_${r}_PASSWORD=$(secret "amqp-$u.password")")
    done
    kv+=(
        RECEIVABLESD_CREDENTIALS_DIRECTORY="$S_CREDS"
        RECEIVABLESD_RMQ_NODENAME="$RMQ_NODENAME"
        RECEIVABLESD_RMQ_ENV="$RMQ_ENV"
        RECEIVABLESD_PG_DATA="$PG_DATA"
        RECEIVABLESD_PG_BIN="$S_PG_BIN"
        RECEIVABLESD_PYTHON="$S_PYTHON"
        # extras: the remaining ports, so that services.sh called from a test sees the same instance
        RECEIVABLESD_PG_PORT="$PG_PORT" RECEIVABLESD_PG2_PORT="$PG2_PORT"
        RECEIVABLESD_DIST_PORT="$DIST_PORT" RECEIVABLESD_EPMD_PORT="$EPMD_PORT"
        RECEIVABLESD_PG_SOCKET_DIR="$PG_DIR"
        RECEIVABLESD_MGMT_URL="http://127.0.0.1:$MGMT_PORT"
        RECEIVABLESD_SERVICES="$S_SELF"
        # TLS material (start / tls-setup): ca.pem, server.pem/.key, client.pem/.key
        RECEIVABLESD_TLS_DIR="$S_TLS"
    )
    local x
    for x in "${kv[@]}"; do printf 'export %s=%q\n' "${x%%=*}" "${x#*=}"; done
}

write_envsh() {
    local tmp="$S_ENVSH.tmp.$$"
    ( umask 077; { echo "# written by scripts/services.sh start — source it: . .local/env.sh"; emit_env; } > "$tmp" )
    mv -f "$tmp" "$S_ENVSH"
}

# ----------------------------------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------------------------------
require_root() { [[ $EUID -eq 0 ]] || die "must run as root (PostgreSQL runs as 'postgres' via runuser)"; }

take_lock() {
    mkdir -p "$S_LOCAL"
    exec 9>"$S_LOCAL/.lock"
    flock -w 600 9 || die "another services.sh holds $S_LOCAL/.lock"
}

anything_alive() { # with the currently loaded config
    [[ -n "$(beam_pid)" || -n "$(epmd_pid)" ]] && return 0
    local p; p=$(pg_pid); pg_owned "$p"
}

# choose the configuration: the recorded one while anything of ours runs, else the requested one
select_config() { # start|other
    requested_config
    local want_ports="$PG_PORT $AMQP_PORT $DIST_PORT $EPMD_PORT $MGMT_PORT $RMQ_NODENAME"
    local want_fast_db=$FAST_DB want_fast_stop=$FAST_STOP
    if load_recorded; then
        derive_paths
        if [[ "$1" == start ]] && ! anything_alive; then
            requested_config            # nothing runs: the caller's overrides win
        else
            local have="$PG_PORT $AMQP_PORT $DIST_PORT $EPMD_PORT $MGMT_PORT $RMQ_NODENAME"
            [[ "$1" == start && "$have" != "$want_ports" ]] && \
                log "note: running instance keeps its ports ($have); stop it to change them"
            # FAST_* from the caller's environment override the recorded ones for stop
            [[ -n "${RECEIVABLESD_FAST_STOP:-}" ]] && FAST_STOP=$want_fast_stop
            [[ -n "${RECEIVABLESD_FAST_DB:-}" && "$1" == start ]] && FAST_DB=$want_fast_db
        fi
    fi
    derive_paths
}

cmd_start() { # [pg|rmq|all]
    local what=${1:-all} t0; t0=$(now_ms)
    require_root; take_lock; select_config start
    mkdir -p "$S_LOCAL"
    ensure_credentials
    local pg_alive=0 rmq_alive=0 p
    p=$(pg_pid); pg_owned "$p" && pg_alive=1
    if (( pg_alive )); then   # a running PostgreSQL keeps the durability it was started with
        if grep -qx 'fsync = off' "$PG_DATA/receivablesd.conf" 2>/dev/null; then FAST_DB=1; else FAST_DB=0; fi
    fi
    [[ -n "$(beam_pid)" ]] && rmq_alive=1
    # check every port we are about to bind before doing any work
    if [[ "$what" != rmq && $pg_alive == 0 ]]; then require_free "$PG_PORT" RECEIVABLESD_PG_PORT; fi
    if [[ "$what" != pg && $rmq_alive == 0 ]]; then
        require_free "$AMQP_PORT" RECEIVABLESD_AMQP_PORT
        require_free "$DIST_PORT" RECEIVABLESD_DIST_PORT
        require_free "$MGMT_PORT" RECEIVABLESD_MGMT_PORT
        [[ -n "$(epmd_pid)" ]] || require_free "$EPMD_PORT" RECEIVABLESD_EPMD_PORT
    fi
    if [[ "$what" == all && $pg_alive == 0 && $rmq_alive == 0 ]]; then
        # the daemon's ports must be free too when starting from nothing
        require_free "$HTTP_PORT" RECEIVABLESD_HTTP_PORT
        require_free "$AMQPS_PORT" RECEIVABLESD_AMQPS_PORT
    fi
    record_config
    tls_ensure
    PG_WAS_RUNNING=1; RMQ_WAS_RUNNING=1
    if [[ "$what" == all || "$what" == pg ]]; then
        pg_start
        if [[ $PG_WAS_RUNNING == 0 || $CREDS_CHANGED == 1 ]]; then pg_provision; fi
    fi
    if [[ "$what" == all || "$what" == rmq ]]; then
        rmq_start
        if [[ $RMQ_WAS_RUNNING == 0 || $CREDS_CHANGED == 1 ]]; then rmq_provision; fi
    fi
    write_envsh
    if [[ $PG_WAS_RUNNING == 1 && $RMQ_WAS_RUNNING == 1 && $CREDS_CHANGED == 0 ]]; then
        log "already running (PostgreSQL 127.0.0.1:$PG_PORT, RabbitMQ 127.0.0.1:$AMQP_PORT): nothing to do"
    else
        local parts=()
        [[ "$what" != rmq ]] && parts+=("PostgreSQL 127.0.0.1:$PG_PORT (fsync $([[ $FAST_DB == 1 ]] && echo off || echo on))")
        [[ "$what" != pg ]] && parts+=("RabbitMQ 127.0.0.1:$AMQP_PORT, management http://127.0.0.1:$MGMT_PORT")
        log "ready in $(( $(now_ms) - t0 )) ms: $(IFS=';'; echo "${parts[*]}" | sed 's/;/, /g'); env in $S_ENVSH"
    fi
}

cmd_stop() { # pg|rmq|all [rabbitmq mode: graceful|kill] [postgresql mode: fast|immediate]
    local what=${1:-all} rmode=${2:-} pmode=${3:-fast}
    case "$rmode" in ""|graceful|kill) ;; *) die "unknown RabbitMQ stop mode '$rmode' (graceful|kill)";; esac
    case "$pmode" in fast|immediate|smart) ;; *) die "unknown PostgreSQL stop mode '$pmode' (fast|immediate)";; esac
    require_root; take_lock; select_config other
    if [[ "$what" == all || "$what" == rmq ]]; then rmq_stop "$rmode"; fi
    if [[ "$what" == all || "$what" == pg ]]; then pg_stop "$pmode"; fi
}

cmd_status() {
    select_config other
    local rc_pg=1 rc_rmq=1 p b e
    p=$(pg_pid)
    if pg_owned "$p"; then
        if pg_ready; then rc_pg=0; echo "postgresql: running   PID $p  127.0.0.1:$PG_PORT  data $PG_DATA  fsync $(grep -Po '^fsync = \K\w+' "$PG_DATA/receivablesd.conf" 2>/dev/null || echo '?')"
        else echo "postgresql: NOT ANSWERING  PID $p  127.0.0.1:$PG_PORT"; fi
    elif [[ -n "$p" ]]; then echo "postgresql: stopped (stale postmaster.pid $p)"
    else echo "postgresql: stopped   (port $PG_PORT, data $PG_DATA)"; fi
    b=$(beam_pid); e=$(epmd_pid)
    if [[ -n "$b" ]]; then
        if rmq_answering; then rc_rmq=0; echo "rabbitmq:   running   PID $b  node $RMQ_NODENAME  amqp 127.0.0.1:$AMQP_PORT  mgmt http://127.0.0.1:$MGMT_PORT  dist $DIST_PORT"
        else echo "rabbitmq:   NOT ANSWERING  PID $b  node $RMQ_NODENAME  amqp 127.0.0.1:$AMQP_PORT"; fi
    else echo "rabbitmq:   stopped   (node $RMQ_NODENAME, port $AMQP_PORT)"; fi
    if [[ -n "$e" ]]; then echo "epmd:       running   PID $e  127.0.0.1:$EPMD_PORT"; else echo "epmd:       stopped   (port $EPMD_PORT)"; fi
    local amqps="(reserved; no TLS material: scripts/services.sh tls-setup)"
    if tls_present; then if tcp_open "$AMQPS_PORT"; then amqps="(TLS, CA $S_TLS/ca.pem)"; else amqps="(TLS configured, not listening)"; fi; fi
    echo "daemon:     http 127.0.0.1:$HTTP_PORT  amqps 127.0.0.1:$AMQPS_PORT $amqps  spare pg $PG2_PORT"
    if (( rc_pg == 0 && rc_rmq == 0 )); then return 0; fi
    if (( rc_pg == 1 && rc_rmq == 1 )) && [[ -z "$e" ]]; then return 3; fi
    return 2
}

cmd_is_running() { # pg|rmq  (quiet; 0 when ours runs and answers)
    select_config other
    case "$1" in
        pg) pg_running ;;
        rmq) rmq_running ;;
        *) die "is-running pg|rmq" ;;
    esac
}

cmd_env() {
    select_config other
    [[ -s "$S_CREDS/db-password" ]] || log "warning: no credentials yet (run 'scripts/services.sh start'); passwords are empty"
    emit_env
}

cmd_wait() { # [timeout seconds]
    local t=${1:-${RECEIVABLESD_WAIT_TIMEOUT:-120}}
    select_config other
    wait_until "$t" pg_running || die "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${t}s"
    wait_until "$t" rmq_running || die "RabbitMQ not ready on 127.0.0.1:$AMQP_PORT after ${t}s"
    rmq_cmd rabbitmqctl -q await_startup --timeout "$t" >/dev/null 2>&1 || die "rabbitmqctl await_startup failed"
}

cmd_purge() {
    cmd_stop all kill fast
    select_config other
    rm -rf "$S_LOCAL" "/tmp/receivablesd-$S_HASH-pg"
    [[ "$PG_DIR" == /tmp/receivablesd-* ]] && rm -rf "$PG_DIR"
    log "removed $S_LOCAL"
}

usage() {
    sed -n '2,14p' "$S_SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    start)      cmd_start all ;;
    stop)       cmd_stop all "${2:-}" ;;     # stop [graceful|kill]
    status)     cmd_status ;;
    env)        cmd_env ;;
    wait)       cmd_wait "${2:-}" ;;
    pg-start)   cmd_start pg ;;
    pg-stop)    cmd_stop pg "" "${2:-fast}" ;;
    rmq-start)  cmd_start rmq ;;
    rmq-stop)   cmd_stop rmq "${2:-}" ;;
    is-running) cmd_is_running "${2:-}" ;;
    purge)      cmd_purge ;;
    tls-setup)  cmd_tls_setup ;;
    *)          usage ;;
esac
