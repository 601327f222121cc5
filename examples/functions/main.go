// Command functions is a tiny sample "serverless function" host for trying sseedge locally and in
// docker-compose: register its handlers as functions and invoke them through the edge.
//
//	go run ./examples/functions -addr 127.0.0.1:9000
//	curl -X POST localhost:8080/admin/functions -d '{"name":"upper","endpoint":"http://127.0.0.1:9000/upper"}'
//	curl -X POST localhost:8080/invoke/upper -d '{"payload":{"text":"hello"}}'
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, log); err != nil {
		log.Error("functions server failed", "err", err)
		os.Exit(1)
	}
}

// run serves the sample functions on addr until SIGINT or SIGTERM, then drains for up to 10s.
func run(addr string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{
		Addr:              addr,
		Handler:           NewHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("sample functions listening", "addr", addr, "paths", "/upper /echo /sleep?ms=N /fail?status=N /health /mcp /grip/stream /grip/hello")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
