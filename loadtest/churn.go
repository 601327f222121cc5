package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// churnConfig is the churn mode: streams opening and closing in a loop on one node while a few stay and
// events flow, to measure what the churn costs Redis in bus subscribe commands.
type churnConfig struct {
	url      string
	streams  int
	roots    int
	stay     int
	duration time.Duration
	rate     float64
	srcIPs   int
	callFlags
}

// churnResult is the churn mode's summary.
type churnResult struct {
	Mode          string  `json:"mode"`
	Streams       int     `json:"streams"`
	Roots         int     `json:"roots"`
	Seconds       float64 `json:"seconds"`
	Opens         int64   `json:"opens"`
	OpensPerSec   float64 `json:"opens_per_sec"`
	OpenErrors    int64   `json:"open_errors"`
	Subscribes    float64 `json:"subscribe_commands"`
	Unsubscribes  float64 `json:"unsubscribe_commands"`
	Published     int64   `json:"published"`
	Stayed        int     `json:"stayed"`
	StayedWanted  int64   `json:"stayed_wanted"`
	StayedGot     int64   `json:"stayed_got"`
	StayedMissing int64   `json:"stayed_missing"`
	OutOfOrder    int64   `json:"stayed_out_of_order"`
}

// runChurn holds cfg.stay streams of the topics /churn-0… open for the whole run, and cfg.streams
// workers that each open a stream of a topic /churn-k (k cycling over cfg.roots topics, each its own
// root), read its response head and close it, in a loop, for cfg.duration, while events are published
// round robin over the stayed topics at up to cfg.rate (the publisher shares the node with the churn).
// It reports the node's SSUBSCRIBE and SUNSUBSCRIBE commands for the run
// (sseedge_bus_*_commands_total: each a batch of channels) and whether the streams that stayed got
// every event of their topic once, in order.
func runChurn(ctx context.Context, cfg churnConfig, out output) (churnResult, error) {
	res := churnResult{Mode: "churn", Streams: cfg.streams, Roots: cfg.roots, Stayed: cfg.stay}
	if cfg.stay > cfg.roots {
		return res, fmt.Errorf("-stay %d is more than -roots %d", cfg.stay, cfg.roots)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	base := strings.TrimRight(cfg.url, "/")
	target, host, err := resolveTarget(ctx, cfg.url)
	if err != nil {
		return res, err
	}
	topic := func(k int) string { return "/churn-" + strconv.Itoa(k) }

	// The streams that stay, one goroutine each: they check the sequence numbers of their topic's events.
	stayed := make([]stayStream, cfg.stay)
	var readers sync.WaitGroup
	streamCtx, closeStreams := context.WithCancel(ctx)
	defer func() { closeStreams(); readers.Wait() }()
	for i := range stayed {
		resp, err := openStream(streamCtx, base+"/subscribe"+topic(i))
		if err != nil {
			return res, err
		}
		readers.Go(func() { stayed[i].read(resp.Body) })
	}

	subs0, unsubs0, err := busCommands(ctx, base)
	if err != nil {
		return res, err
	}

	runCtx, stop := context.WithTimeout(ctx, cfg.duration)
	defer stop()
	opens := &callStats{} // ok: streams opened; bad, samples: the failures
	var churners sync.WaitGroup
	srcs := sourceIPs(target, cfg.srcIPs)
	start := time.Now()
	for w := range cfg.streams {
		churners.Go(func() {
			d := net.Dialer{Timeout: 5 * time.Second}
			if len(srcs) > 0 {
				d.LocalAddr = &net.TCPAddr{IP: srcs[w%len(srcs)].AsSlice()}
			}
			// The run's end is checked by the clock: a dial past runCtx's deadline fails at once, before
			// the context's timer marks it done.
			end, _ := runCtx.Deadline()
			for k := w; time.Now().Before(end); k += cfg.streams {
				if err := openAndClose(runCtx, &d, target.String(), buildRequest(host, "/subscribe"+topic(k%cfg.roots))); err != nil {
					if time.Now().Before(end) {
						opens.fail(err)
					}
					continue
				}
				opens.ok.Add(1)
			}
		})
	}

	// The publisher: every event names its topic's sequence number, which the streams that stay check.
	client := newCallClient(1)
	defer client.CloseIdleConnections()
	checked := max(cfg.stay, 1) // the events go to the topics whose streams stay: theirs are checked
	seq := make([]int64, checked)
	publish := func(k int) error {
		seq[k]++
		body := `{"event":"` + churnEvent + `","data":"` + strconv.FormatInt(seq[k], 10) + `"}`
		st := callBatch(ctx, client, base+"/publish"+topic(k), cfg.token, []byte(body), 1, 1, 0)
		if st.bad.Load() > 0 {
			return fmt.Errorf("publish to %s: %s", topic(k), strings.Join(st.samples, "; "))
		}
		res.Published++
		return nil
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / max(cfg.rate, 1)))
	defer tick.Stop()
	var pubErr error
publishing:
	for k := 0; ; k = (k + 1) % checked {
		select {
		case <-runCtx.Done():
			break publishing
		case <-tick.C:
			if pubErr = publish(k); pubErr != nil {
				stop()
				break publishing
			}
		}
	}
	churners.Wait()
	res.Seconds = time.Since(start).Seconds()
	if pubErr != nil {
		return res, pubErr
	}
	// A last event for every stayed topic, so that each stream's count ends at a known number.
	for k := range cfg.stay {
		if err := publish(k); err != nil {
			return res, err
		}
	}
	for i := range stayed {
		res.StayedWanted += seq[i]
	}
	for ctx.Err() == nil {
		got := int64(0)
		for i := range stayed {
			got += stayed[i].count.Load()
		}
		if got >= res.StayedWanted {
			break
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	subs1, unsubs1, err := busCommands(ctx, base)
	if err != nil {
		return res, err
	}
	closeStreams()
	readers.Wait()
	res.Opens, res.OpenErrors = opens.ok.Load(), opens.bad.Load()
	res.OpensPerSec = float64(res.Opens) / res.Seconds
	res.Subscribes, res.Unsubscribes = subs1-subs0, unsubs1-unsubs0
	for i := range stayed {
		n, bad := stayed[i].count.Load(), stayed[i].outOfOrder.Load()
		res.StayedGot += n
		res.OutOfOrder += bad
		res.StayedMissing += max(0, seq[i]-stayed[i].last.Load())
	}
	out.printf("churn %s: %d workers over %d roots for %.1f s: %d stream opens (%.0f/s, %d failed); %.0f SSUBSCRIBE and %.0f SUNSUBSCRIBE commands",
		base, cfg.streams, cfg.roots, res.Seconds, res.Opens, res.OpensPerSec, res.OpenErrors, res.Subscribes, res.Unsubscribes)
	for _, e := range opens.samples {
		out.printf("  failed open: %s", e)
	}
	out.printf("%d events published; the %d streams that stayed got %d of %d (%d missing, %d out of order or repeated)",
		res.Published, cfg.stay, res.StayedGot, res.StayedWanted, res.StayedMissing, res.OutOfOrder)
	if res.StayedGot != res.StayedWanted || res.StayedMissing > 0 || res.OutOfOrder > 0 {
		return res, fmt.Errorf("the streams that stayed got %d of %d events, %d missing, %d out of order or repeated",
			res.StayedGot, res.StayedWanted, res.StayedMissing, res.OutOfOrder)
	}
	if res.Opens == 0 {
		return res, fmt.Errorf("no stream opened (%d failures)", res.OpenErrors)
	}
	return res, nil
}

// busCommands reads the node's SSUBSCRIBE and SUNSUBSCRIBE commands so far.
func busCommands(ctx context.Context, base string) (subs, unsubs float64, err error) {
	if subs, err = scrape(ctx, base, "sseedge_bus_subscribe_commands_total"); err != nil {
		return 0, 0, err
	}
	unsubs, err = scrape(ctx, base, "sseedge_bus_unsubscribe_commands_total")
	return subs, unsubs, err
}

// churnEvent names the events the churn mode publishes (a stream's heartbeats have numeric data too).
const churnEvent = "churn"

// stayStream is one stream that stays open: the sequence numbers of its events must rise by one.
type stayStream struct {
	count, last, outOfOrder atomic.Int64
}

// read feeds the stream's body to the load client's SSE parser until the body ends.
func (s *stayStream) read(body io.ReadCloser) {
	defer body.Close()
	var p Parser
	buf := make([]byte, 4096)
	for {
		n, err := body.Read(buf)
		if n > 0 && p.Feed(buf[:n], s) != nil {
			return
		}
		if err != nil {
			return
		}
	}
}

// OnEvent checks the sequence number of each churn event (heartbeats and other events aside).
func (s *stayStream) OnEvent(ev Event) {
	if string(ev.Type) != churnEvent {
		return
	}
	n, err := strconv.ParseInt(string(ev.Data), 10, 64)
	if err != nil {
		return
	}
	s.count.Add(1)
	if n != s.last.Load()+1 {
		s.outOfOrder.Add(1)
	}
	s.last.Store(n)
}

// openStream opens one stream and returns once its response head is read.
func openStream(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("open %s: status %d", url, resp.StatusCode)
	}
	return resp, nil
}

// openAndClose opens one stream on a new connection, reads its response head and closes it.
func openAndClose(ctx context.Context, d *net.Dialer, addr string, request []byte) error {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write(request); err != nil {
		return err
	}
	var resp fasthttp.ResponseHeader
	if err := resp.Read(bufio.NewReaderSize(conn, 1024)); err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK || !bytes.HasPrefix(resp.ContentType(), []byte("text/event-stream")) {
		return fmt.Errorf("status %d", resp.StatusCode())
	}
	return nil
}
