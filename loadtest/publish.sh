#!/usr/bin/env bash
# publish.sh [REQUESTS] [CALLERS] [BATCH]: publish throughput over HTTP, memory mode and Redis in the
# same run. Starts a redis-server on a free port, one edge node in memory mode and one on that Redis,
# and runs `loadtest publish` against each: single events (POST /publish/{topic}), then batches of BATCH
# events over 4 topics (POST /publish with items). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
n="${1:-20000}" c="${2:-32}" batch="${3:-100}"
lt_init
lt_redis
mport="$(lt_free_port)" dport="$(lt_free_port)"
lt_node "$mport" memory
lt_node "$dport" redis REDIS_ADDR="127.0.0.1:$rport"
for mode in memory redis; do
	port="$mport"; [ "$mode" = redis ] && port="$dport"
	echo "== $mode"
	"$tmp/loadtest" publish -url "http://127.0.0.1:$port" -n "$n" -c "$c"
	"$tmp/loadtest" publish -url "http://127.0.0.1:$port" -n "$((n / batch * 4))" -c "$c" -batch "$batch"
done
