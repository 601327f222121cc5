#!/usr/bin/env bash
# churn.sh [STREAMS] [SECONDS]: one edge node on a redis-server of its own; `loadtest churn` with STREAMS
# streams opening and closing in a loop for SECONDS, first over 100 topic roots, then each stream
# reconnecting to a root of its own (STREAMS roots), and the SSUBSCRIBE commands Redis counted for each
# run beside the node's. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/lib.sh
streams="${1:-2000}" secs="${2:-30}"
lt_init
lt_redis
port="$(lt_free_port)"
lt_node "$port" churn REDIS_ADDR="127.0.0.1:$rport"
for roots in 100 "$streams"; do
	echo "== $streams streams over $roots roots for ${secs}s"
	redis-cli -p "$rport" config resetstat >/dev/null
	"$tmp/loadtest" churn -url "http://127.0.0.1:$port" -streams "$streams" -roots "$roots" -duration "${secs}s"
	redis-cli -p "$rport" info commandstats | grep -E '^cmdstat_s(un)?subscribe' || true
	# The next run starts once the lingering subscriptions of this one's roots are gone.
	until [ "$(curl -fs "http://127.0.0.1:$port/metrics" | awk '$1 == "sseedge_bus_subscriptions" {print $2}')" = 0 ]; do sleep 0.2; done
done
