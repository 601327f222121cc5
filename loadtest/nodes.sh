#!/usr/bin/env bash
# nodes.sh [N] [CLIENTS] [EVENTS]: starts a redis-server on a free port and N edge nodes on it (ports
# 18081…), runs `loadtest nodes` against them, and prints each node's bus messages received per event
# it delivered. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-4}" clients="${2:-400}" events="${3:-4000}"
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
rport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
urls=()
for i in $(seq 1 "$n"); do
	port=$((18080 + i))
	PORT="$port" NODE_ID="node-$i" REDIS_ADDR="127.0.0.1:$rport" "$tmp/edge" >"$tmp/edge-$i.log" 2>&1 &
	pids+=($!)
	urls+=("http://127.0.0.1:$port")
done
for u in "${urls[@]}"; do
	until curl -fs "$u/admin/health" >/dev/null 2>&1; do sleep 0.1; done
done
"$tmp/loadtest" nodes -urls "$(IFS=,; echo "${urls[*]}")" -clients "$clients" -events "$events"
