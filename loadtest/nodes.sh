#!/usr/bin/env bash
# nodes.sh [N] [CLIENTS] [EVENTS]: starts a redis-server on a free port and N edge nodes on it (ports
# 18081…), runs `loadtest nodes` against them, and prints each node's bus messages received per event
# it delivered. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
n="${1:-4}" clients="${2:-400}" events="${3:-4000}"
lt_init
lt_redis
urls=()
for i in $(seq 1 "$n"); do
	lt_node $((18080 + i)) "node-$i" REDIS_ADDR="127.0.0.1:$rport"
	urls+=("http://127.0.0.1:$((18080 + i))")
done
"$tmp/loadtest" nodes -urls "$(IFS=,; echo "${urls[*]}")" -clients "$clients" -events "$events"
