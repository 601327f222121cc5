package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// invokeConfig is the configuration of the invoke mode.
type invokeConfig struct {
	url     string
	fn      string
	n       int
	c       int
	warmup  int
	payload string
	direct  string
	callFlags
}

// invokeResult is the JSON summary of an invoke run. Latencies are milliseconds.
type invokeResult struct {
	Mode        string   `json:"mode"`
	URL         string   `json:"url"`
	Function    string   `json:"function"`
	N           int      `json:"n"`
	Concurrency int      `json:"concurrency"`
	OK          int64    `json:"ok"`
	Errors      int64    `json:"errors"`
	PerSec      float64  `json:"invocations_per_sec"`
	P50         float64  `json:"p50_ms"`
	P99         float64  `json:"p99_ms"`
	Max         float64  `json:"max_ms"`
	Direct      string   `json:"direct,omitempty"`
	DirectOK    int64    `json:"direct_ok,omitempty"`
	DirectErr   int64    `json:"direct_errors,omitempty"`
	DirectP50   float64  `json:"direct_p50_ms,omitempty"`
	DirectP99   float64  `json:"direct_p99_ms,omitempty"`
	OverheadP50 float64  `json:"overhead_p50_ms,omitempty"`
	OverheadP99 float64  `json:"overhead_p99_ms,omitempty"`
	ErrorSample []string `json:"error_sample,omitempty"`
}

// callStats is what one batch of calls measured.
type callStats struct {
	hist    Histogram
	ok, bad atomic.Int64
	elapsed time.Duration
	mu      sync.Mutex
	samples []string
}

func (s *callStats) fail(err error) {
	s.bad.Add(1)
	s.mu.Lock()
	if len(s.samples) < 3 {
		s.samples = append(s.samples, err.Error())
	}
	s.mu.Unlock()
}

// newCallClient is the load client of the call modes: fasthttp's, which costs the machine a fraction of
// net/http's CPU per request. The load client shares the cores with the node it measures, as wrk did for
// the figures the issues quote, so a heavier client would measure itself.
func newCallClient(c int) *fasthttp.Client {
	return &fasthttp.Client{MaxConnsPerHost: max(1, c), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxIdleConnDuration: time.Minute, NoDefaultUserAgentHeader: true}
}

// callBatch POSTs body to url n times from c workers (after warmup unmeasured calls) and records the
// latency of every 2xx answer. Each call ends when ctx does, or after 30 seconds.
func callBatch(ctx context.Context, client *fasthttp.Client, url, token string, body []byte, n, c, warmup int) *callStats {
	st := &callStats{}
	call := func() (time.Duration, error) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.SetBodyRaw(body)
		deadline := time.Now().Add(30 * time.Second)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		t0 := time.Now()
		err := client.DoDeadline(req, resp, deadline)
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("post %s: %w", url, err)
		}
		if resp.StatusCode()/100 != 2 {
			return 0, fmt.Errorf("post %s: status %d: %.200s", url, resp.StatusCode(), bytes.TrimSpace(resp.Body()))
		}
		return d, nil
	}
	for range warmup {
		if _, err := call(); err != nil {
			st.fail(err)
			return st
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(1, c) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				d, err := call()
				if err != nil {
					st.fail(err)
					continue
				}
				st.ok.Add(1)
				st.hist.RecordDuration(d)
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// runInvoke measures synchronous invocations through the edge and, with cfg.direct, the same calls
// made straight at the function, reporting the edge's overhead as the difference of the quantiles.
// The direct calls run first so that the function is warm for both.
func runInvoke(ctx context.Context, cfg invokeConfig, out output) (invokeResult, error) {
	res := invokeResult{Mode: "invoke", URL: cfg.url, Function: cfg.fn, N: cfg.n, Concurrency: cfg.c, Direct: cfg.direct}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if !json.Valid([]byte(cfg.payload)) {
		return res, fmt.Errorf("-payload is not JSON: %q", cfg.payload)
	}
	client := newCallClient(cfg.c)
	defer client.CloseIdleConnections()

	if cfg.direct != "" {
		d := callBatch(ctx, client, cfg.direct, "", []byte(cfg.payload), cfg.n, cfg.c, cfg.warmup)
		res.DirectOK, res.DirectErr = d.ok.Load(), d.bad.Load()
		res.DirectP50, res.DirectP99 = ms(d.hist.Quantile(0.5)), ms(d.hist.Quantile(0.99))
		res.ErrorSample = append(res.ErrorSample, d.samples...)
		out.printf("direct %s: %d ok, %d errors, p50 %.3f ms, p99 %.3f ms", cfg.direct, res.DirectOK, res.DirectErr, res.DirectP50, res.DirectP99)
	}
	body := []byte(`{"payload":` + cfg.payload + `}`)
	e := callBatch(ctx, client, strings.TrimRight(cfg.url, "/")+"/invoke/"+cfg.fn, cfg.token, body, cfg.n, cfg.c, cfg.warmup)
	res.OK, res.Errors = e.ok.Load(), e.bad.Load()
	if e.elapsed > 0 {
		res.PerSec = float64(res.OK) / e.elapsed.Seconds()
	}
	res.P50, res.P99, res.Max = ms(e.hist.Quantile(0.5)), ms(e.hist.Quantile(0.99)), ms(e.hist.Max())
	res.ErrorSample = append(res.ErrorSample, e.samples...)
	out.printf("edge /invoke/%s: %d ok, %d errors, %.0f invocations/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms",
		cfg.fn, res.OK, res.Errors, res.PerSec, res.P50, res.P99, res.Max)
	if cfg.direct != "" {
		res.OverheadP50, res.OverheadP99 = res.P50-res.DirectP50, res.P99-res.DirectP99
		out.printf("edge overhead: p50 %.3f ms, p99 %.3f ms", res.OverheadP50, res.OverheadP99)
	}
	for _, s := range res.ErrorSample {
		out.printf("  error: %s", s)
	}
	if res.Errors+res.DirectErr > 0 || res.OK == 0 {
		return res, fmt.Errorf("%d edge and %d direct calls failed", res.Errors, res.DirectErr)
	}
	return res, nil
}
