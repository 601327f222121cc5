#!/usr/bin/env bash
# crossnode.sh: two edge nodes on one redis-server and one node in memory mode; loadtest fanout with
# 2,000 subscribers, publishing on the memory-mode node itself (a single node, no Redis), on B itself
# (through Redis) and on node A (across nodes), twice each, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
lt_init
lt_redis
for i in 1 2; do lt_node $((18180 + i)) "n$i" REDIS_ADDR="127.0.0.1:$rport"; done
lt_node 18183 memory
for run in 1 2; do
	echo "== single node in memory mode (subscribe and publish on it), run $run"
	"$tmp/loadtest" fanout -url http://127.0.0.1:18183 -subs 2000 -events 200 -rate 50 -topic /memory$run 2>&1 | grep -i "p99\|latency" | head -3
	echo "== one node through Redis (subscribe and publish on B), run $run"
	"$tmp/loadtest" fanout -url http://127.0.0.1:18182 -subs 2000 -events 200 -rate 50 -topic /single$run 2>&1 | grep -i "p99\|latency" | head -3
	echo "== cross node (subscribe on B, publish on A), run $run"
	"$tmp/loadtest" fanout -url http://127.0.0.1:18182 -publish-url http://127.0.0.1:18181 -subs 2000 -events 200 -rate 50 -topic /cross$run 2>&1 | grep -i "p99\|latency" | head -3
done
