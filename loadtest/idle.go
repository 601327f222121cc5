package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sseedge/sseedge/loadtest/internal/sysres"
)

// idleConfig is the configuration of the idle mode.
type idleConfig struct {
	clientFlags
	n      int
	pid    int
	path   string
	hold   time.Duration
	settle time.Duration
}

// idleResult is the JSON summary of an idle run. Memory figures are bytes.
type idleResult struct {
	Mode            string   `json:"mode"`
	URL             string   `json:"url"`
	Client          string   `json:"client"`
	N               int      `json:"n"`
	Established     int64    `json:"established"`
	Failed          int64    `json:"failed"`
	ClosedByServer  int64    `json:"closed_by_server"`
	WithBody        int64    `json:"with_body"` // streams that also received body bytes (a retry hint, a connected event)
	ConnectSeconds  float64  `json:"connect_seconds"`
	ConnectRate     float64  `json:"connect_rate"`
	ServerRSSBefore int64    `json:"server_rss_before,omitempty"`
	ServerRSSAfter  int64    `json:"server_rss_after,omitempty"`
	RSSPerConn      float64  `json:"rss_per_conn,omitempty"`
	HeapBefore      int64    `json:"heap_inuse_before,omitempty"`
	HeapAfter       int64    `json:"heap_inuse_after,omitempty"`
	HeapPerConn     float64  `json:"heap_per_conn,omitempty"`
	StackPerConn    float64  `json:"stack_per_conn,omitempty"`
	GoPerConn       float64  `json:"go_per_conn,omitempty"` // heap + stack in use
	VarsError       string   `json:"vars_error,omitempty"`
	ClientCPU       float64  `json:"client_cpu_seconds"`
	ClientRSS       int64    `json:"client_rss"`
	ClientPerConn   float64  `json:"client_rss_per_conn"`
	ClientGoPerConn float64  `json:"client_go_per_conn"`
	Errors          []string `json:"errors,omitempty"`
}

// runIdle opens cfg.n streams, waits for every response head, measures the server's and its own
// memory, optionally holds the streams, and closes them. It returns an error (with the result still
// filled in) when fewer than n streams were established or any was closed by the server.
func runIdle(ctx context.Context, cfg idleConfig, out output) (idleResult, error) {
	res := idleResult{Mode: "idle", URL: cfg.url, Client: cfg.client, N: cfg.n}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if _, err := checkFiles(cfg.n); err != nil {
		return res, err
	}
	target, host, err := resolveTarget(ctx, cfg.url)
	if err != nil {
		return res, err
	}
	spec := &dialSpec{
		target: target, request: buildRequest(host, cfg.path), n: cfg.n, conc: cfg.conc,
		srcIPs: sourceIPs(target, cfg.srcIPs), readDelay: cfg.delay,
	}

	if cfg.pid > 0 {
		if res.ServerRSSBefore, err = sysres.RSS(cfg.pid); err != nil {
			return res, err
		}
	}
	memBefore, varsErr := fetchVars(ctx, cfg.url)
	cliRSS0, cliGo0 := clientMem()
	cpu0 := cpuNow()

	sh := &shared{}
	streams := make([]stream, cfg.n)
	start := time.Now()
	cl, err := startClient(cfg.client, cfg.pollers, spec, sh, streams)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	out.printf("idle: opening %d streams to %s%s (%s client, %d source addresses)", cfg.n, cfg.url, cfg.path, cfg.client, len(spec.srcIPs))
	lastLog := start
	for sh.established.Load()+sh.failed.Load() < int64(cfg.n) {
		if !sleepCtx(ctx, 10*time.Millisecond) {
			break
		}
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			out.printf("  %d established, %d failed", sh.established.Load(), sh.failed.Load())
		}
	}
	elapsed := time.Since(start)
	res.Established, res.Failed = sh.established.Load(), sh.failed.Load()
	res.ConnectSeconds = elapsed.Seconds()
	res.ConnectRate = float64(res.Established) / elapsed.Seconds()
	out.printf("established %d/%d in %.2fs (%.0f conn/s), %d failed", res.Established, cfg.n, elapsed.Seconds(), res.ConnectRate, res.Failed)

	sleepCtx(ctx, cfg.settle)
	if cfg.pid > 0 {
		if res.ServerRSSAfter, err = sysres.RSS(cfg.pid); err != nil {
			return res, err
		}
		res.RSSPerConn = perConn(res.ServerRSSBefore, res.ServerRSSAfter, res.Established)
		out.printf("server RSS %.1f MiB -> %.1f MiB: %.0f B per stream", mib(res.ServerRSSBefore), mib(res.ServerRSSAfter), res.RSSPerConn)
	}
	memAfter, err := fetchVars(ctx, cfg.url)
	if varsErr = errors.Join(varsErr, err); varsErr != nil {
		res.VarsError = varsErr.Error()
		out.printf("server Go memory: unavailable (%v)", varsErr)
	} else {
		res.HeapBefore, res.HeapAfter = memBefore.HeapInuse, memAfter.HeapInuse
		res.HeapPerConn = perConn(memBefore.HeapInuse, memAfter.HeapInuse, res.Established)
		res.StackPerConn = perConn(memBefore.StackInuse, memAfter.StackInuse, res.Established)
		res.GoPerConn = res.HeapPerConn + res.StackPerConn
		out.printf("server Go heap in use %.1f -> %.1f MiB: %.0f B heap + %.0f B stack per stream",
			mib(memBefore.HeapInuse), mib(memAfter.HeapInuse), res.HeapPerConn, res.StackPerConn)
	}
	cliRSS1, cliGo1 := clientMem()
	res.ClientRSS = cliRSS1
	res.ClientPerConn = perConn(cliRSS0, cliRSS1, res.Established)
	res.ClientGoPerConn = perConn(cliGo0, cliGo1, res.Established)

	if cfg.hold > 0 {
		out.printf("holding for %s", cfg.hold)
		sleepCtx(ctx, cfg.hold)
	}
	cl.Close()
	for i := range streams {
		if streams[i].body {
			res.WithBody++
		}
	}
	res.ClosedByServer = sh.closed.Load()
	res.ClientCPU = (cpuNow() - cpu0).Seconds()
	res.Errors = sh.errSummary()
	out.printf("%d streams received body bytes after the head", res.WithBody)
	out.printf("client: %.2fs CPU, RSS %.1f MiB (%.0f B per stream, Go heap+stack %.0f B per stream)",
		res.ClientCPU, mib(res.ClientRSS), res.ClientPerConn, res.ClientGoPerConn)
	for _, e := range res.Errors {
		out.printf("  error: %s", e)
	}
	switch {
	case res.Established < int64(cfg.n):
		return res, fmt.Errorf("established %d of %d streams", res.Established, cfg.n)
	case res.ClosedByServer > 0:
		return res, fmt.Errorf("server closed %d streams", res.ClosedByServer)
	}
	return res, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
