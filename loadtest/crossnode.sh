#!/usr/bin/env bash
set -euo pipefail
# crossnode.sh: two edge nodes on one redis-server and one node in memory mode; loadtest fanout with
# 2,000 subscribers, publishing on the memory-mode node itself (a single node, no Redis), on B itself
# (through Redis) and on node A (across nodes), twice each, in one run.
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/edge" ./cmd/edge
go build -o "$tmp/loadtest" ./loadtest
rport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
for i in 1 2; do
	PORT=$((18180+i)) NODE_ID="n$i" REDIS_ADDR="127.0.0.1:$rport" MAX_STREAMS_PER_IP=0 "$tmp/edge" >"$tmp/e$i.log" 2>&1 &
	pids+=($!)
done
PORT=18183 NODE_ID=memory MAX_STREAMS_PER_IP=0 "$tmp/edge" >"$tmp/e3.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do until curl -fs "http://127.0.0.1:$((18180+i))/admin/health" >/dev/null 2>&1; do sleep 0.1; done; done
for run in 1 2; do
echo "== single node in memory mode (subscribe and publish on it), run $run"
"$tmp/loadtest" fanout -url http://127.0.0.1:18183 -subs 2000 -events 200 -rate 50 -topic /memory$run 2>&1 | grep -i "p99\|latency" | head -3
echo "== one node through Redis (subscribe and publish on B), run $run"
"$tmp/loadtest" fanout -url http://127.0.0.1:18182 -subs 2000 -events 200 -rate 50 -topic /single$run 2>&1 | grep -i "p99\|latency" | head -3
echo "== cross node (subscribe on B, publish on A), run $run"
"$tmp/loadtest" fanout -url http://127.0.0.1:18182 -publish-url http://127.0.0.1:18181 -subs 2000 -events 200 -rate 50 -topic /cross$run 2>&1 | grep -i "p99\|latency" | head -3
done
