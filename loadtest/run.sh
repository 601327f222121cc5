#!/usr/bin/env bash
# run.sh: what `make bench` calls. Builds the bench driver (loadtest/bench) and runs it: it builds the
# baseline server, ./cmd/edge and the load generator, runs short idle and fanout loads against a fresh
# process of each, and prints the comparison table. Settings are environment variables, see
# loadtest/bench/main.go (IDLE_N, FANOUT_SUBS, FANOUT_EVENTS, FANOUT_RATE, BENCH_TIMEOUT, ...).
# The driver is started in the background and waited for, so that a TERM or INT sent to this script
# reaches it (bash defers traps while a foreground child runs); the driver kills every process it
# started when it exits, and its children die with it in any case (PR_SET_PDEATHSIG). The driver's
# temporary files live under $tmp, which the EXIT trap removes.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
pid=""
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go build -o "$tmp/bench" ./loadtest/bench
TMPDIR="$tmp" "$tmp/bench" "$@" &
pid=$!
wait "$pid"
