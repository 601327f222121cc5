package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// publishConfig is the configuration of the publish mode.
type publishConfig struct {
	url    string
	topics int
	n      int
	c      int
	batch  int
	size   int
	callFlags
}

// publishResult is the JSON summary of a publish run. Latencies are milliseconds.
type publishResult struct {
	Mode        string   `json:"mode"`
	URL         string   `json:"url"`
	Requests    int      `json:"requests"`
	Batch       int      `json:"batch"`
	Concurrency int      `json:"concurrency"`
	OK          int64    `json:"ok"`
	Errors      int64    `json:"errors"`
	EventsSec   float64  `json:"events_per_sec"`
	P50         float64  `json:"p50_ms"`
	P99         float64  `json:"p99_ms"`
	ErrorSample []string `json:"error_sample,omitempty"`
}

// runPublish measures publishing over HTTP: cfg.n requests from cfg.c concurrent callers, each one
// event (POST /publish/{topic}) or, with cfg.batch above 1, cfg.batch events spread over cfg.topics
// topics (POST /publish {"items"}). It reports events accepted per second: compare a node in memory
// mode and one on Redis in the same run (loadtest/publish.sh).
func runPublish(ctx context.Context, cfg publishConfig, out output) (publishResult, error) {
	res := publishResult{Mode: "publish", URL: cfg.url, Requests: cfg.n, Batch: max(1, cfg.batch), Concurrency: cfg.c}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	client := newCallClient(cfg.c)
	defer client.CloseIdleConnections()

	data := strings.Repeat("x", max(1, cfg.size))
	base := strings.TrimRight(cfg.url, "/")
	url, body := base+"/publish/bench/publish/0", mustJSON(map[string]string{"event": "bench", "data": data})
	if res.Batch > 1 {
		items := make([]map[string]string, res.Batch)
		for i := range items {
			items[i] = map[string]string{"topic": fmt.Sprintf("/bench/publish/%d", i%max(1, cfg.topics)), "event": "bench", "data": data}
		}
		url, body = base+"/publish", mustJSON(map[string]any{"items": items})
	}
	st := callBatch(ctx, client, url, cfg.token, body, cfg.n, cfg.c, 100)
	res.OK, res.Errors = st.ok.Load(), st.bad.Load()
	if st.elapsed > 0 {
		res.EventsSec = float64(res.OK) * float64(res.Batch) / st.elapsed.Seconds()
	}
	res.P50, res.P99 = ms(st.hist.Quantile(0.5)), ms(st.hist.Quantile(0.99))
	res.ErrorSample = st.samples
	out.printf("publish %s (batch %d, %d callers): %d ok, %d errors, %.0f events/s, p50 %.3f ms, p99 %.3f ms",
		url, res.Batch, cfg.c, res.OK, res.Errors, res.EventsSec, res.P50, res.P99)
	for _, s := range res.ErrorSample {
		out.printf("  error: %s", s)
	}
	if res.Errors > 0 || res.OK == 0 {
		return res, fmt.Errorf("%d of %d publish requests failed", res.Errors, cfg.n)
	}
	return res, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}
