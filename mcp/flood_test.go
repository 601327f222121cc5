package mcp_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sseedge/sseedge/mcp"
	"github.com/sseedge/sseedge/metrics"
)

// from is h as seen by a client whose connections come from the loopback address src (Linux routes all
// of 127/8 to lo, so each is a distinct source on one machine).
func (h *harness) from(t *testing.T, src string) *harness {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	c := *h
	c.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	return &c
}

// ping sends a second request on a Streamable HTTP session and returns the status.
func (h *harness) ping(t *testing.T, sid string) int {
	t.Helper()
	resp, _ := h.post(t, "/mcp/upper", `{"jsonrpc":"2.0","id":7,"method":"ping"}`, map[string]string{"Mcp-Session-Id": sid})
	return resp.StatusCode
}

// flood sends n initialize calls from each of srcs, 8 at a time per source, and checks each was answered.
func (h *harness) flood(t *testing.T, n int, srcs ...string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, src := range srcs {
		c := h.from(t, src)
		for range 8 {
			wg.Go(func() {
				for range n / 8 {
					resp, _ := c.post(t, "/mcp/upper", initialize, nil)
					if resp.StatusCode != http.StatusOK {
						t.Errorf("initialize from %s: %d", src, resp.StatusCode)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

func evictions(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() != "sseedge_mcp_sessions_evicted_total" {
			continue
		}
		for _, m := range mf.Metric {
			if m.Label[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestSessionFloodFromOneAddress: unauthenticated initialize calls from one address evict only that
// address's own sessions. Before the bound, the store kept its newest 100,000 sessions whoever made
// them, so 100,100 initialize calls evicted every real session.
func TestSessionFloodFromOneAddress(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := start(t, options{sessions: &mcp.MemorySessionStore{Max: 500, MaxPerSource: 100}, metrics: metrics.New(reg)})
	real := h.from(t, "127.0.0.2")
	used := real.initialize(t, "upper")
	if code := real.ping(t, used); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	stream, endpoint := real.openSSE(t, "upper")
	fresh := h.from(t, "127.0.0.3").initialize(t, "upper") // a session that has not yet made its second request

	h.flood(t, 1000, "127.0.0.1") // twice the whole store

	if code := real.ping(t, used); code != http.StatusOK {
		t.Fatalf("the real session after the flood: %d; want 200", code)
	}
	if code := h.from(t, "127.0.0.3").ping(t, fresh); code != http.StatusOK {
		t.Fatalf("another address's fresh session after the flood: %d; want 200", code)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+endpoint, strings.NewReader(callUpper(`"after"`)))
	req.Header.Set("Content-Type", "application/json")
	if resp, b := real.do(t, req, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the real HTTP+SSE session after the flood: %d %s", resp.StatusCode, b)
	}
	if ev := stream.next(t, "message"); !strings.Contains(ev.data, `"after"`) {
		t.Fatalf("reply on the HTTP+SSE stream: %q", ev.data)
	}
	if n := h.sessions.Len(); n > 103 {
		t.Fatalf("%d sessions held; want the flooding address's 100 and the 3 real ones", n)
	}
	if n := evictions(t, reg, "address_limit"); n != 900 {
		t.Fatalf("%v sessions evicted at the address limit; want 900", n)
	}
}

// TestSessionFloodFromManyAddresses: when a flood from many addresses fills the store, sessions that
// never made a second request go first, and an evicted session's stream ends so its client reconnects.
func TestSessionFloodFromManyAddresses(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := start(t, options{sessions: &mcp.MemorySessionStore{Max: 200, MaxPerSource: 100}, metrics: metrics.New(reg)})
	real := h.from(t, "127.0.0.2")
	used := real.initialize(t, "upper")
	if code := real.ping(t, used); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	idleStream, _ := h.from(t, "127.0.0.4").openSSE(t, "upper") // a stream whose session never posts
	idle := h.from(t, "127.0.0.3").initialize(t, "upper")

	srcs := []string{"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	h.flood(t, 200, srcs...) // 1,000 sessions into a store of 200

	if code := real.ping(t, used); code != http.StatusOK {
		t.Fatalf("the used session after the flood: %d; want 200", code)
	}
	if code := h.from(t, "127.0.0.3").ping(t, idle); code != http.StatusNotFound {
		t.Fatalf("an idle session older than the flood: %d; want 404 (evicted first)", code)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, idleStream.r); done <- err }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the evicted HTTP+SSE session's stream is still open")
	}
	if n := h.sessions.Len(); n > 200 {
		t.Fatalf("%d sessions held; want at most 200", n)
	}
	if n := evictions(t, reg, "store_full"); n < 800 {
		t.Fatalf("%v sessions evicted with the store full; want at least 800", n)
	}
}
