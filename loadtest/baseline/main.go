// Command baseline is the goroutine-per-connection net/http SSE server that sseedge is measured against
// (see loadtest/internal/basesrv for what it does and its slow-consumer policy). It raises its soft
// open-file limit to the hard limit at start, since every held stream costs one descriptor.
//
//	go run ./loadtest/baseline [-addr 127.0.0.1:8090] [-buffer 64] [-heartbeat 15s] [-floor]
//
// With -floor it serves loadtest/internal/floorsrv instead: the least work per delivery this machine
// allows, the floor that the fanout figures of both servers are read against.
//
// The address is -addr when given, else HOST (default 127.0.0.1) and PORT when PORT is set, else
// 127.0.0.1:8090. HEARTBEAT_INTERVAL sets the default of -heartbeat.
package main

import (
	"context"
	"expvar"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sseedge/sseedge/loadtest/internal/basesrv"
	"github.com/sseedge/sseedge/loadtest/internal/floorsrv"
	"github.com/sseedge/sseedge/loadtest/internal/sysres"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := "127.0.0.1:8090"
	if port := os.Getenv("PORT"); port != "" {
		host := os.Getenv("HOST")
		if host == "" {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	heartbeat := 15 * time.Second
	if v := os.Getenv("HEARTBEAT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("HEARTBEAT_INTERVAL: %w", err)
		}
		heartbeat = d
	}
	flag.StringVar(&addr, "addr", addr, "listen address (default from HOST/PORT, else 127.0.0.1:8090)")
	buffer := flag.Int("buffer", 64, "per-subscriber channel capacity; events for a full channel are dropped")
	flag.DurationVar(&heartbeat, "heartbeat", heartbeat, "heartbeat interval per stream (negative disables)")
	floor := flag.Bool("floor", false, "serve the floor instead: every publish written to every socket, nothing else (loadtest/internal/floorsrv)")
	flag.Parse()

	soft, hard, err := sysres.RaiseNoFile()
	if err != nil {
		return err
	}
	var serve func(context.Context, net.Listener) error
	if *floor {
		srv := floorsrv.New(expvar.Handler())
		expvar.Publish("floor", expvar.Func(func() any { return srv.Stats() }))
		serve = srv.Serve
	} else {
		srv := basesrv.New(basesrv.Config{Buffer: *buffer, Heartbeat: heartbeat}, expvar.Handler())
		expvar.Publish("baseline", expvar.Func(func() any { return srv.Stats() }))
		serve = srv.Serve
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(os.Stderr, "baseline: listening on %s pid %d nofile %d/%d\n", ln.Addr(), os.Getpid(), soft, hard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, ln)
}
