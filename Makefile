# receivablesd — developer and CI entry points. GNU make, run as root on Debian 12.
#
#   make test    deps, private services (throwaway settings), swift build, swift test, stop   (CI: .ci/run)
#   make demo    deps, private services (durable settings), release build, scripts/demo.sh, stop
#
# Nothing here depends on the caller's environment beyond PATH, except the documented port/node
# overrides (RECEIVABLESD_PORT_BASE, RECEIVABLESD_PG_PORT, RECEIVABLESD_AMQP_PORT, ...): see
# docs/operations-dev.md and `scripts/services.sh`.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := help
.ONESHELL:
MAKEFLAGS += --no-print-directory

SERVICES := scripts/services.sh
WITH     := scripts/services/with-services.sh
DEBUG_BIN   := $(CURDIR)/.build/debug/receivablesd
RELEASE_BIN := $(CURDIR)/.build/release/receivablesd

.PHONY: help deps services stop status env build release migrate test demo bench bench-micro clean

help:
	@echo "targets: deps services stop status env build release migrate test demo bench bench-micro clean"
	@echo "  make test   - everything CI does (installs deps, starts and stops private services)"
	@echo "  make demo   - release build + scripts/demo.sh against durable private services"
	@echo "  make bench-micro - micro benchmarks of money, envelopes, allocation, reconciliation, bank formats (no services)"

deps:
	@scripts/services/deps.sh

services: deps
	@RECEIVABLESD_FAST_DB=0 RECEIVABLESD_FAST_STOP=0 bash $(SERVICES) start
	bash $(SERVICES) status

stop:
	@bash $(SERVICES) stop

status:
	@bash $(SERVICES) status || true

env:
	@bash $(SERVICES) env

build: deps
	swift build

release: deps
	swift build -c release

migrate: build
	@bash $(SERVICES) is-running pg || { echo "migrate: PostgreSQL is not running: run 'make services' first" >&2; exit 1; }
	set -a; . .local/env.sh; set +a
	"$(DEBUG_BIN)" migrate

# Tests: throwaway database settings (fsync off) and SIGKILL of the broker at the end. Services that
# were already running (a developer's session) are used and left running; services started here are
# stopped on success, failure and interruption alike (trap in with-services.sh).
test: deps
	@exec env RECEIVABLESD_FAST_DB=1 RECEIVABLESD_FAST_STOP=1 $(WITH) --label "make test" -- \
	    bash -c 'set -e; swift build; export RECEIVABLESD_BIN="$$PWD/.build/debug/receivablesd"; exec swift test --no-parallel'

demo: deps
	@test -f scripts/demo.sh || { echo "demo: scripts/demo.sh does not exist yet (it is written by the demo's owner)" >&2; exit 1; }
	exec env RECEIVABLESD_FAST_DB=0 RECEIVABLESD_FAST_STOP=0 $(WITH) --label "make demo" -- \
	    bash -c 'set -e; swift build -c release; export RECEIVABLESD_BIN="$$PWD/.build/release/receivablesd"; exec bash scripts/demo.sh'

bench: deps
	@exec env RECEIVABLESD_FAST_DB=0 RECEIVABLESD_FAST_STOP=0 $(WITH) --label "make bench" -- \
	    bash -c 'set -e; swift build -c release; export RECEIVABLESD_BIN="$$PWD/.build/release/receivablesd"; "$$RECEIVABLESD_BIN" bench e2e; "$$RECEIVABLESD_BIN" bench pipeline; "$$RECEIVABLESD_BIN" bench partitions; exec "$$RECEIVABLESD_BIN" bench bank'

# Micro benchmarks of the in-process parts (ordo-one/benchmark, release build), each beside a
# baseline from the same run. A package of its own (Benchmarks/), so neither `make build` nor
# `make test` compiles the benchmark framework. No services needed; libxml2 comes with deps.
bench-micro: deps
	nice -n 10 swift package --package-path Benchmarks benchmark --no-progress

clean:
	@bash $(SERVICES) purge
	rm -rf .build
