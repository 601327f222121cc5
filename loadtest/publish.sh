#!/usr/bin/env bash
# publish.sh [REQUESTS] [CALLERS] [BATCH]: publish throughput over HTTP, memory mode and Redis in the
# same run. Starts a redis-server on a free port, one edge node in memory mode and one on that Redis,
# and runs `loadtest publish` against each: single events (POST /publish/{topic}), then batches of BATCH
# events over 4 topics (POST /publish with items). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}" c="${2:-32}" batch="${3:-100}"
tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/edge" ./cmd/edge
go build -o "$tmp/loadtest" ./loadtest
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport="$(free)"
redis-server --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
mport="$(free)" dport="$(free)"
PORT="$mport" NODE_ID=memory LOG_LEVEL=warn "$tmp/edge" >"$tmp/memory.log" 2>&1 &
pids+=($!)
PORT="$dport" NODE_ID=redis LOG_LEVEL=warn REDIS_ADDR="127.0.0.1:$rport" "$tmp/edge" >"$tmp/redis-node.log" 2>&1 &
pids+=($!)
for p in "$mport" "$dport"; do
	until curl -fs "http://127.0.0.1:$p/admin/health" >/dev/null 2>&1; do sleep 0.1; done
done
for mode in memory redis; do
	port="$mport"; [ "$mode" = redis ] && port="$dport"
	echo "== $mode"
	"$tmp/loadtest" publish -url "http://127.0.0.1:$port" -n "$n" -c "$c"
	"$tmp/loadtest" publish -url "http://127.0.0.1:$port" -n "$((n / batch * 4))" -c "$c" -batch "$batch"
done
