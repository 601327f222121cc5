#!/usr/bin/env bash
# A local 3-node sseedge demo in one command: a redis-server, three edge nodes sharing it, and, when
# nginx is installed, a load balancer on :8080 configured for SSE (deploy/nginx.conf with local
# upstreams). Ctrl-C stops everything it started.
#
#   scripts/demo-cluster.sh            # nodes on :8081 :8082 :8083, balancer on :8080
#   REDIS_PORT=6391 scripts/demo-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
LB_PORT=${LB_PORT:-8080}
command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install redis-server" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/edge" ./cmd/edge

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

for i in 1 2 3; do
	PORT=808$i NODE_ID=node-$i REDIS_ADDR=127.0.0.1:$REDIS_PORT MAX_STREAMS_PER_IP=0 LOG_LEVEL=warn \
		"$work/edge" 2>"$work/node-$i.log" &
	pids+=($!)
done
for i in 1 2 3; do
	until curl -sf "localhost:808$i/admin/health" >/dev/null; do sleep 0.1; done
done

entry="localhost:8081"
if command -v nginx >/dev/null; then
	sed -e "s/server edge1:8080;/server 127.0.0.1:8081;\n        server 127.0.0.1:8082;\n        server 127.0.0.1:8083;/" \
		-e "/server edge2:8080;/d" -e "s/listen 8080;/listen $LB_PORT;/" \
		-e "s|^worker_processes auto;|worker_processes auto;\npid $work/nginx.pid;\nerror_log $work/nginx.log;|" \
		deploy/nginx.conf >"$work/nginx.conf"
	nginx -c "$work/nginx.conf" -g 'daemon off;' &
	pids+=($!)
	until curl -sf "localhost:$LB_PORT/admin/health" >/dev/null; do sleep 0.1; done
	entry="localhost:$LB_PORT"
	echo "load balancer (nginx, SSE-ready) on :$LB_PORT"
else
	echo "nginx is not installed: no load balancer; talk to the nodes directly (apt-get install nginx-light)"
fi

cat <<MSG
three nodes share Redis on :$REDIS_PORT: node-1 :8081, node-2 :8082, node-3 :8083

  curl -sN localhost:8081/subscribe/pets                     # a subscriber on node-1
  curl -sN localhost:8082/subscribe/pets                     # another on node-2
  curl -s -X POST localhost:8083/publish/pets/dogs -d '{"event":"bark","data":"woof"}'   # both get it
  curl -s '$entry/admin/connections'                           # every node's counts

Ctrl-C stops the demo.
MSG
wait
