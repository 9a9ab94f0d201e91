#!/usr/bin/env bash
# scripts/services/deps.sh — install (with apt, as root) only the Debian 12 packages that are missing.
# Called by `make deps`. Never starts system services: a policy-rc.d that denies them is put in place
# for the install when there is none, and removed afterwards only if this script created it.
set -euo pipefail

PACKAGES=(
    postgresql-15 postgresql-client-15 libpq-dev
    rabbitmq-server librabbitmq-dev
    libssl-dev openssl libxml2-dev libsystemd-dev pkg-config
    python3 python3-pika python3-jsonschema python3-yaml
    systemd
)

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ "$p" == systemd ]] && command -v systemd-analyze >/dev/null 2>&1; then continue; fi
    installed "$p" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
    echo "deps: all packages present"
    exit 0
fi

[[ $EUID -eq 0 ]] || { echo "deps: missing packages (${missing[*]}) and not root: install them as root" >&2; exit 1; }
echo "deps: installing ${missing[*]}"

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() { if (( created_policy )); then rm -f "$POLICY"; fi; }
trap cleanup EXIT
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# temporary, from receivablesd scripts/services/deps.sh: apt must not start services\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
t0=$(date +%s)
"${APT[@]}" update -qq
"${APT[@]}" install -y -qq "${missing[@]}" < /dev/null
echo "deps: installed in $(( $(date +%s) - t0 )) s"

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
(( ${#still[@]} == 0 )) || { echo "deps: still missing after install: ${still[*]}" >&2; exit 1; }
