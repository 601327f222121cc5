package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutConfig is the configuration of the fanout mode.
type fanoutConfig struct {
	clientFlags
	publishURL string
	topic      string
	subs       int
	events     int
	rate       float64
	inflight   int
	window     int
	drain      time.Duration
}

// fanoutResult is the JSON summary of a fanout run. Latencies are milliseconds.
type fanoutResult struct {
	Mode             string   `json:"mode"`
	URL              string   `json:"url"`
	Client           string   `json:"client"`
	Subs             int      `json:"subs"`
	Events           int      `json:"events"`
	Rate             float64  `json:"rate"`
	Inflight         int      `json:"inflight"`
	Window           int      `json:"window"`
	Established      int64    `json:"established"`
	Published        int64    `json:"published"`
	PublishErrors    int64    `json:"publish_errors"`
	Expected         int64    `json:"expected"`
	Delivered        int64    `json:"delivered"`
	Missing          int64    `json:"missing"`
	Duplicates       int64    `json:"duplicates"`
	Unstamped        int64    `json:"unstamped"`
	ClosedByServer   int64    `json:"closed_by_server"`
	Seconds          float64  `json:"seconds"`
	DeliveriesPerSec float64  `json:"deliveries_per_sec"`
	LatencyP50       float64  `json:"latency_p50_ms"`
	LatencyP99       float64  `json:"latency_p99_ms"`
	LatencyP999      float64  `json:"latency_p999_ms"`
	LatencyMax       float64  `json:"latency_max_ms"`
	LatencyMean      float64  `json:"latency_mean_ms"`
	PublishP50       float64  `json:"publish_p50_ms"`
	PublishP99       float64  `json:"publish_p99_ms"`
	ClientCPU        float64  `json:"client_cpu_seconds"`
	ClientCPUTotal   float64  `json:"client_cpu_total_seconds"`
	Errors           []string `json:"errors,omitempty"`
}

// publisher POSTs events to one publish URL.
type publisher struct {
	client *http.Client
	url    string
	token  string
}

func newPublisher(base, topic, token string, conns int) *publisher {
	return &publisher{
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
			},
		},
		url:   strings.TrimRight(base, "/") + "/publish" + topic,
		token: token,
	}
}

func (p *publisher) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("publish request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// eventBody is a publish body whose data carries the send time the subscribers measure latency from.
func eventBody(event string, seq int) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"event":"`...)
	b = append(b, event...)
	b = append(b, `","data":{"t":`...)
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	return append(b, "}}"...)
}

// runFanout subscribes cfg.subs streams to one topic, proves every subscription live with probe events,
// then publishes cfg.events events, flat out (bounded by -inflight concurrent POSTs and a -window of
// events not yet delivered to everyone, so the run measures the server's delivery rate rather than the
// depth of a queue the publisher filled) or paced at -rate. Every subscriber counts the events of this
// run (a random event type; heartbeats, probes and any connect or retry preamble are ignored) and
// records publish-to-read latency. The run fails when any delivery is missing.
func runFanout(ctx context.Context, cfg fanoutConfig, out output) (fanoutResult, error) {
	res := fanoutResult{Mode: "fanout", URL: cfg.url, Client: cfg.client, Subs: cfg.subs, Events: cfg.events,
		Rate: cfg.rate, Inflight: cfg.inflight, Window: cfg.window}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if _, err := checkFiles(cfg.subs + cfg.inflight); err != nil {
		return res, err
	}
	if !strings.HasPrefix(cfg.topic, "/") {
		cfg.topic = "/" + cfg.topic
	}
	if cfg.publishURL == "" {
		cfg.publishURL = cfg.url
	}
	target, host, err := resolveTarget(ctx, cfg.url)
	if err != nil {
		return res, err
	}
	spec := &dialSpec{
		target: target, request: buildRequest(host, "/subscribe"+cfg.topic), n: cfg.subs, conc: cfg.conc,
		srcIPs: sourceIPs(target, cfg.srcIPs), readDelay: cfg.delay,
	}
	evType := fmt.Sprintf("bench-%08x", rand.Uint32())
	sh := &shared{want: []byte(evType), probe: []byte(evType + "-probe")}
	streams := make([]stream, cfg.subs)
	cpu0 := cpuNow()

	cl, err := startClient(cfg.client, cfg.pollers, spec, sh, streams)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	out.printf("fanout: %d subscribers of %s on %s (%s client)", cfg.subs, cfg.topic, cfg.url, cfg.client)
	for sh.established.Load()+sh.failed.Load() < int64(cfg.subs) && sleepCtx(ctx, 10*time.Millisecond) {
	}
	res.Established = sh.established.Load()
	if res.Established < int64(cfg.subs) {
		cl.Close()
		res.Errors = sh.errSummary()
		return res, fmt.Errorf("established %d of %d subscribers: %s", res.Established, cfg.subs, strings.Join(res.Errors, "; "))
	}

	pub := newPublisher(cfg.publishURL, cfg.topic, cfg.token, cfg.inflight)
	if err := probe(ctx, pub, sh, evType+"-probe", res.Established); err != nil {
		return res, err
	}
	out.printf("all %d subscriptions live; publishing %d events (rate %s, inflight %d, window %d)",
		res.Established, cfg.events, rateText(cfg.rate), cfg.inflight, cfg.window)

	var pubHist Histogram
	var published, pubErrs atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(1, cfg.inflight) {
		wg.Go(func() {
			for seq := range jobs {
				t0 := time.Now()
				if err := pub.post(ctx, eventBody(evType, seq)); err != nil {
					pubErrs.Add(1)
					sh.noteErr(err)
					continue
				}
				pubHist.RecordDuration(time.Since(t0))
				published.Add(1)
			}
		})
	}
	cpuPub := cpuNow()
	start := time.Now()
	stallErr := dispatch(ctx, cfg, sh, res.Established, jobs, start, &pubErrs)
	close(jobs)
	wg.Wait()
	res.Published, res.PublishErrors = published.Load(), pubErrs.Load()
	res.Expected = res.Published * res.Established

	lastCount, lastMove := sh.delivered.Load(), time.Now()
	for sh.delivered.Load() < res.Expected && ctx.Err() == nil {
		if n := sh.delivered.Load(); n != lastCount {
			lastCount, lastMove = n, time.Now()
		} else if time.Since(lastMove) > cfg.drain {
			break
		}
		sleepCtx(ctx, 2*time.Millisecond)
	}
	res.ClientCPU = (cpuNow() - cpuPub).Seconds()
	cl.Close()
	res.ClientCPUTotal = (cpuNow() - cpu0).Seconds()

	var lat Histogram
	cl.histogram(&lat)
	for i := range streams {
		got := int64(streams[i].events)
		res.Delivered += got
		res.Missing += max(0, res.Published-got)
		res.Duplicates += max(0, got-res.Published)
	}
	res.Unstamped = sh.unstamped.Load()
	res.ClosedByServer = sh.closed.Load()
	if last := sh.lastDelivery.Load(); last > 0 && res.Delivered > 0 {
		res.Seconds = time.Duration(last - start.UnixNano()).Seconds()
		res.DeliveriesPerSec = float64(res.Delivered) / res.Seconds
	}
	res.LatencyP50, res.LatencyP99 = ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99))
	res.LatencyP999, res.LatencyMax, res.LatencyMean = ms(lat.Quantile(0.999)), ms(lat.Max()), lat.Mean()/1e6
	res.PublishP50, res.PublishP99 = ms(pubHist.Quantile(0.5)), ms(pubHist.Quantile(0.99))
	res.Errors = sh.errSummary()

	out.printf("published %d events (%d errors), publish p50 %.2f ms p99 %.2f ms",
		res.Published, res.PublishErrors, res.PublishP50, res.PublishP99)
	out.printf("delivered %d of %d frames in %.3fs: %.0f deliveries/s; %d missing, %d duplicate, %d closed by server",
		res.Delivered, res.Expected, res.Seconds, res.DeliveriesPerSec, res.Missing, res.Duplicates, res.ClosedByServer)
	out.printf("latency publish->delivery p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
		res.LatencyP50, res.LatencyP99, res.LatencyP999, res.LatencyMax)
	out.printf("client CPU %.2fs while delivering (%.0f%% of one core), %.2fs in all",
		res.ClientCPU, 100*res.ClientCPU/max(res.Seconds, 1e-9), res.ClientCPUTotal)
	for _, e := range res.Errors {
		out.printf("  error: %s", e)
	}
	switch {
	case stallErr != nil:
		return res, stallErr
	case res.PublishErrors > 0:
		return res, fmt.Errorf("%d publishes failed", res.PublishErrors)
	case res.Missing > 0:
		return res, fmt.Errorf("%d deliveries missing", res.Missing)
	case res.Duplicates > 0:
		return res, fmt.Errorf("%d deliveries duplicated", res.Duplicates)
	}
	return res, nil
}

// dispatch hands sequence numbers to the publish workers, pacing them at cfg.rate, and, with a window,
// holding event i back until events i-window and earlier have reached every subscriber. It gives up
// when deliveries make no progress for cfg.drain.
func dispatch(ctx context.Context, cfg fanoutConfig, sh *shared, subs int64, jobs chan<- int, start time.Time, pubErrs *atomic.Int64) error {
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.rate)
	}
	lastCount, lastMove := sh.delivered.Load(), time.Now()
	for i := range cfg.events {
		for cfg.window > 0 && int64(i)-(sh.delivered.Load()/subs)-pubErrs.Load() >= int64(cfg.window) {
			if n := sh.delivered.Load(); n != lastCount {
				lastCount, lastMove = n, time.Now()
			} else if time.Since(lastMove) > cfg.drain {
				return fmt.Errorf("deliveries stalled for %s at event %d (%d delivered)", cfg.drain, i, n)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("publishing: %w", ctx.Err())
			}
			time.Sleep(50 * time.Microsecond)
		}
		if interval > 0 && !sleepCtx(ctx, time.Until(start.Add(time.Duration(i)*interval))) {
			return fmt.Errorf("publishing: %w", ctx.Err())
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			return fmt.Errorf("publishing: %w", ctx.Err())
		}
	}
	return nil
}

// probe publishes probe events until every subscriber has seen one, so that the measured run starts
// only once the server has registered every subscription (a server may send the head before it does).
func probe(ctx context.Context, pub *publisher, sh *shared, probeType string, subs int64) error {
	deadline := time.Now().Add(20 * time.Second)
	body := []byte(`{"event":"` + probeType + `","data":{"probe":true}}`)
	for sh.probed.Load() < subs {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d subscribers saw a probe event within 20s", sh.probed.Load(), subs)
		}
		if err := pub.post(ctx, body); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		for range 50 {
			if sh.probed.Load() >= subs || !sleepCtx(ctx, 4*time.Millisecond) {
				break
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("probe: %w", ctx.Err())
		}
	}
	return nil
}

func rateText(r float64) string {
	if r <= 0 {
		return "flat out"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}
