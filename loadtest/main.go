// Command loadtest is the sseedge load generator. It measures what DESIGN.md's performance table
// promises, against sseedge or any server with the same contract (such as ./loadtest/baseline):
//
//	go run ./loadtest idle   -url http://127.0.0.1:8080 -n 19000 -pid <server pid> [-hold 10s]
//	go run ./loadtest fanout -url http://127.0.0.1:8080 -subs 10000 -topic /bench -events 200 [-rate 0]
//	go run ./loadtest invoke -url http://127.0.0.1:8080 -fn NAME -n 2000 -c 16 [-direct URL]
//	go run ./loadtest churn  -url http://127.0.0.1:8080 -streams 2000 -roots 100 -duration 30s
//	go run ./loadtest nodes  -urls http://127.0.0.1:8081,http://127.0.0.1:8082 -clients 400 -events 4000
//
// idle holds N streams and reports server memory per stream; fanout measures deliveries per second and
// publish-to-delivery latency of one topic with S subscribers; invoke measures synchronous invocations
// and, given the function's own URL, the edge's overhead; nodes prints, for nodes sharing one Redis,
// the bus messages each received per event it delivered (loadtest/nodes.sh starts them). Streams are held by a light client (raw
// non-blocking sockets on epoll, spread over many loopback source addresses) so the client stays small
// next to the server. Every mode prints readable lines and then one JSON line (only the JSON with
// -json) and exits 1 when the run failed its own checks. Linux only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

const usage = `usage: loadtest <idle|fanout|invoke|nodes|publish|churn> [flags]   (loadtest <mode> -h lists the flags)`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one mode and returns the process exit code: 0 success, 1 a failed run, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	mode, args := args[0], args[1:]
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var exec func() (any, error)
	var jsonOnly *bool
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load client to this file")

	switch mode {
	case "idle":
		var cfg idleConfig
		cfg.register(fs, 0)
		fs.IntVar(&cfg.n, "n", 2000, "streams to hold")
		fs.IntVar(&cfg.pid, "pid", 0, "server process id, for its RSS (0: skip)")
		fs.StringVar(&cfg.path, "path", "/subscribe/idle", "stream path")
		fs.DurationVar(&cfg.hold, "hold", 0, "keep the streams open this long after measuring")
		fs.DurationVar(&cfg.settle, "settle", time.Second, "wait this long after the last head before measuring memory")
		jsonOnly = &cfg.json
		exec = func() (any, error) { return runIdle(ctx, cfg, output{w: stdout, jsonOnly: cfg.json}) }
	case "fanout":
		var cfg fanoutConfig
		cfg.register(fs, 500*time.Microsecond)
		fs.StringVar(&cfg.publishURL, "publish-url", "", "base URL to publish to (default -url)")
		fs.StringVar(&cfg.topic, "topic", "/bench", "topic to subscribe and publish to")
		fs.IntVar(&cfg.subs, "subs", 2000, "subscribers")
		fs.IntVar(&cfg.events, "events", 100, "events to publish")
		fs.Float64Var(&cfg.rate, "rate", 0, "events per second (0: flat out, bounded by -inflight and -window)")
		fs.IntVar(&cfg.inflight, "inflight", 2, "most publish requests in flight")
		fs.IntVar(&cfg.window, "window", 8, "most events published but not yet delivered to every subscriber (0: unbounded)")
		fs.DurationVar(&cfg.drain, "drain", 5*time.Second, "give up waiting for deliveries after this long without progress")
		jsonOnly = &cfg.json
		exec = func() (any, error) { return runFanout(ctx, cfg, output{w: stdout, jsonOnly: cfg.json}) }
	case "invoke":
		var cfg invokeConfig
		fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "base URL of the edge")
		fs.StringVar(&cfg.fn, "fn", "", "function name (required)")
		fs.IntVar(&cfg.n, "n", 2000, "measured calls")
		fs.IntVar(&cfg.c, "c", 16, "concurrent callers")
		fs.IntVar(&cfg.warmup, "warmup", 50, "unmeasured calls first")
		fs.StringVar(&cfg.payload, "payload", `{"hello":"world"}`, "JSON payload")
		fs.StringVar(&cfg.direct, "direct", "", "the function's own URL, to measure the edge's overhead")
		cfg.callFlags.register(fs)
		jsonOnly = &cfg.json
		exec = func() (any, error) {
			if cfg.fn == "" {
				return nil, errUsage
			}
			return runInvoke(ctx, cfg, output{w: stdout, jsonOnly: cfg.json})
		}
	case "publish":
		var cfg publishConfig
		fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "base URL of the edge")
		fs.IntVar(&cfg.n, "n", 20000, "measured publish requests")
		fs.IntVar(&cfg.c, "c", 32, "concurrent callers")
		fs.IntVar(&cfg.batch, "batch", 1, "events per request (above 1: POST /publish with items)")
		fs.IntVar(&cfg.topics, "topics", 4, "topics a batch spreads its events over")
		fs.IntVar(&cfg.size, "size", 64, "bytes of data per event")
		cfg.callFlags.register(fs)
		jsonOnly = &cfg.json
		exec = func() (any, error) { return runPublish(ctx, cfg, output{w: stdout, jsonOnly: cfg.json}) }
	case "churn":
		var cfg churnConfig
		fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "base URL of the node")
		fs.IntVar(&cfg.streams, "streams", 2000, "streams opening and closing in a loop, one worker each")
		fs.IntVar(&cfg.roots, "roots", 100, "topics (each its own root) the streams cycle over")
		fs.IntVar(&cfg.stay, "stay", 10, "streams that stay open for the run, one on each of the first topics, checked for every event once, in order")
		fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long the streams churn")
		fs.Float64Var(&cfg.rate, "rate", 200, "most events per second, round robin over the topics whose streams stay")
		fs.IntVar(&cfg.srcIPs, "src-ips", 64, "loopback targets: spread connections over this many 127.0.y.z source addresses (0: let the kernel pick)")
		cfg.callFlags.register(fs)
		jsonOnly = &cfg.json
		exec = func() (any, error) { return runChurn(ctx, cfg, output{w: stdout, jsonOnly: cfg.json}) }
	case "nodes":
		var cfg nodesConfig
		fs.StringVar(&cfg.urls, "urls", "http://127.0.0.1:8081,http://127.0.0.1:8082", "comma-separated base URLs of the nodes (one Redis)")
		fs.IntVar(&cfg.clients, "clients", 400, "client streams, spread round-robin over the nodes")
		fs.IntVar(&cfg.events, "events", 4000, "personal events, published round-robin through the nodes")
		cfg.callFlags.register(fs)
		jsonOnly = &cfg.json
		exec = func() (any, error) { return runNodes(ctx, cfg, output{w: stdout, jsonOnly: cfg.json}) }
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	res, err := exec()
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "loadtest %s: missing required flags\n", mode)
		fs.Usage()
		return 2
	}
	if res != nil {
		if serr := (output{w: stdout, jsonOnly: *jsonOnly}).summary(res); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest %s: %v\n", mode, err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")
