# lib.sh: what the load scripts share. Source it from the repository's root:
#   lt_init              a scratch directory ($tmp), the edge and loadtest binaries built into it, and a
#                        trap that stops everything started and removes $tmp on exit
#   lt_free_port         prints a free TCP port
#   lt_redis             starts a redis-server on a free port (no persistence); sets $rport
#   lt_node PORT NAME [VAR=value…]
#                        starts an edge node (NODE_ID=NAME, LOG_LEVEL=warn, no per-IP stream cap, the
#                        given environment) on PORT, logging to $tmp/NAME.log, and waits for its health
pids=()
lt_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
lt_init() {
	tmp="$(mktemp -d)"
	trap lt_cleanup EXIT
	go build -o "$tmp/edge" ./cmd/edge
	go build -o "$tmp/loadtest" ./loadtest
}
lt_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lt_redis() {
	rport="$(lt_free_port)"
	redis-server --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
	pids+=($!)
	until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
}
lt_node() {
	local port="$1" name="$2"
	shift 2
	env PORT="$port" NODE_ID="$name" LOG_LEVEL=warn MAX_STREAMS_PER_IP=0 "$@" "$tmp/edge" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	until curl -fs "http://127.0.0.1:$port/admin/health" >/dev/null 2>&1; do sleep 0.1; done
}
