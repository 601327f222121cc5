package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// nodesConfig is the multi-node mode: client streams spread over several nodes of one Redis, personal
// events published through all of them, and each node's bus messages per event it delivered.
type nodesConfig struct {
	urls    string // comma-separated base URLs, one per node
	clients int
	events  int
	callFlags
}

// nodeFigure is one node's line of the result.
type nodeFigure struct {
	URL       string  `json:"url"`
	Streams   int     `json:"streams"`
	Delivered int64   `json:"delivered"`
	Received  float64 `json:"bus_received"`
	PerEvent  float64 `json:"bus_per_delivered"`
}

// nodesResult is the mode's summary.
type nodesResult struct {
	Mode   string       `json:"mode"`
	Events int          `json:"events"`
	Nodes  []nodeFigure `json:"nodes"`
}

// runNodes opens cfg.clients personal streams round-robin over the nodes, publishes cfg.events personal
// events round-robin through the nodes (client i%clients), waits for every delivery, and reads each
// node's sseedge_bus_messages_received_total before and after. Streams are plain HTTP reads, one
// goroutine each: this mode measures the bus, not the client.
func runNodes(ctx context.Context, cfg nodesConfig, out output) (any, error) {
	urls := strings.Split(cfg.urls, ",")
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	delivered := make([]atomic.Int64, len(urls))
	var total atomic.Int64
	var wg sync.WaitGroup
	opened := make(chan error, cfg.clients)
	for c := range cfg.clients {
		n := c % len(urls)
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, urls[n]+"/sse/lt-"+strconv.Itoa(c), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				opened <- err
				return
			}
			defer resp.Body.Close()
			opened <- nil
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ev-") {
					delivered[n].Add(1)
					total.Add(1)
				}
			}
		})
	}
	for range cfg.clients {
		if err := <-opened; err != nil {
			return nil, fmt.Errorf("opening a stream: %w", err)
		}
	}
	time.Sleep(time.Second) // the streams' heads are read; let their bus subscriptions settle
	before := make([]float64, len(urls))
	for i, u := range urls {
		v, err := scrape(ctx, u, "sseedge_bus_messages_received_total")
		if err != nil {
			return nil, err
		}
		before[i] = v
	}
	for j := range cfg.events {
		u := urls[j%len(urls)]
		body := `{"event":"lt","data":"ev-` + strconv.Itoa(j) + `"}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/clients/lt-"+strconv.Itoa(j%cfg.clients)+"/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if cfg.token != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("publishing: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("publishing: status %d", resp.StatusCode)
		}
	}
	for total.Load() < int64(cfg.events) {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, fmt.Errorf("%d of %d events delivered before the timeout", total.Load(), cfg.events)
		}
	}
	res := nodesResult{Mode: "nodes", Events: cfg.events}
	for i, u := range urls {
		v, err := scrape(ctx, u, "sseedge_bus_messages_received_total")
		if err != nil {
			return nil, err
		}
		f := nodeFigure{URL: u, Streams: (cfg.clients + len(urls) - 1 - i) / len(urls), Delivered: delivered[i].Load(), Received: v - before[i]}
		if f.Delivered > 0 {
			f.PerEvent = f.Received / float64(f.Delivered)
		}
		res.Nodes = append(res.Nodes, f)
		out.printf("node %s: %d streams, %d events delivered, %.0f bus messages received: %.2f a delivered event",
			u, f.Streams, f.Delivered, f.Received, f.PerEvent)
	}
	cancel()
	wg.Wait()
	return res, nil
}

// scrape reads one counter (summed over its series) from a node's /metrics.
func scrape(ctx context.Context, base, name string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics of %s: %w", base, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}
