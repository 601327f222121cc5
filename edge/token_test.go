package edge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/metrics"
)

// tokenServer is an edge with stream tokens that enforces exp to the second (no leeway), with metrics.
func tokenServer(t *testing.T) (*testServer, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return start(t, teststack.Config{
		StreamAuth: auth.NewStreamAuth(tokenSecret, auth.WithLeeway(0)),
		Metrics:    metrics.New(reg),
	}), reg
}

// counter reads an sseedge counter from reg, with the given label value when it has labels.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if len(m.Label) == 0 || m.Label[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// expectTokenExpired reads a raw stream until its token_expired event, checks the retry hint after it
// and that the stream then ends, and returns when the event came.
func expectTokenExpired(t *testing.T, c net.Conn, r *bufio.Reader, what string) time.Time {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := readUntil(r, "event: token_expired"); err != nil {
		t.Fatalf("%s: no token_expired event: %v", what, err)
	}
	at := time.Now()
	data, _ := r.ReadString('\n')
	if !strings.Contains(data, `"reason":"token_expired"`) {
		t.Fatalf("%s: token_expired data %q", what, data)
	}
	if blank, _ := r.ReadString('\n'); blank != "\n" {
		t.Fatalf("%s: token_expired event not ended: %q", what, blank)
	}
	if retry, _ := r.ReadString('\n'); retry != "retry: 3000\n" {
		t.Fatalf("%s: after token_expired %q; want the retry hint", what, retry)
	}
	if rest, err := io.ReadAll(r); err != nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("%s: after the retry hint %q, %v; want the stream to end", what, rest, err)
	}
	return at
}

// TestStreamClosedAtTokenExpiry: a stream lives as long as its token. Before, tokens were checked at
// connect only, and a stream whose token expired kept receiving events.
func TestStreamClosedAtTokenExpiry(t *testing.T) {
	srv, reg := tokenServer(t)
	signed := time.Now()
	alice := sign(t, tokenSecret, "alice", []string{"/pets"}, 2*time.Second)
	exp := time.Unix(signed.Add(2*time.Second).Unix(), 0) // exp is in whole seconds
	client, cr := rawStream(t, srv.addr, "/sse/alice?token="+alice)
	defer client.Close()
	topic, tr := rawStream(t, srv.addr, "/subscribe/pets/dogs?token="+alice)
	defer topic.Close()
	testutil.WaitFor(t, "streams", func() bool { st := srv.Stats(); return st.ClientStreams == 1 && st.TopicStreams == 1 })

	publish(t, srv, "/pets/dogs", "", "before")
	_ = topic.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readUntil(tr, "data: before"); err != nil {
		t.Fatalf("the topic stream before exp: %v", err)
	}
	for what, s := range map[string]struct {
		c net.Conn
		r *bufio.Reader
	}{"client stream": {client, cr}, "topic stream": {topic, tr}} {
		at := expectTokenExpired(t, s.c, s.r, what)
		t.Logf("%s ended %v after exp", what, at.Sub(exp).Round(time.Millisecond))
		if at.Before(exp) || at.After(exp.Add(1500*time.Millisecond)) {
			t.Fatalf("%s ended at %v, exp %v; want within a second after exp", what, at, exp)
		}
	}
	testutil.WaitFor(t, "streams closed", func() bool { st := srv.Stats(); return st.ClientStreams == 0 && st.TopicStreams == 0 })
	if n := counter(t, reg, "sseedge_stream_tokens_expired_total", ""); n != 2 {
		t.Fatalf("sseedge_stream_tokens_expired_total %v; want 2", n)
	}
	if n := counter(t, reg, "sseedge_connections_closed_total", "timeout"); n != 2 {
		t.Fatalf("connections closed for timeout %v; want 2", n)
	}
}

// refresh posts a token refresh for client id and returns the status and the JSON answer.
func refresh(t *testing.T, srv *testServer, id, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/sse/"+id+"/token", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestTokenRefreshExtendsLiveStream: POST /sse/{clientId}/token with a new token for the same client
// moves a live stream's deadline to the new token's, longer or shorter; anything else is refused.
func TestTokenRefreshExtendsLiveStream(t *testing.T) {
	srv, reg := tokenServer(t)
	began := time.Now()
	short := sign(t, tokenSecret, "alice", []string{"/pets"}, 2*time.Second)
	s := openSSE(t, srv.url+"/sse/alice?token="+short, nil)
	if ev := s.next(t); ev.Type != "connected" {
		t.Fatalf("first event %+v", ev)
	}

	long := sign(t, tokenSecret, "alice", nil, time.Minute)
	code, out := refresh(t, srv, "alice", long)
	if code != http.StatusOK || out["streams"] != float64(1) || out["expires_at"] == nil {
		t.Fatalf("refresh: %d %v", code, out)
	}
	for _, c := range []struct {
		name, id, token string
		status          int
		code            string
	}{
		{"someone else's token", "alice", sign(t, tokenSecret, "bob", nil, time.Minute), 403, "token_wrong_subject"},
		{"no token", "alice", "", 401, "token_missing"},
		{"expired", "alice", signExpired(t, "alice"), 401, "token_expired"},
		{"forged", "alice", sign(t, []byte("another secret"), "alice", nil, time.Minute), 401, "token_invalid"},
		{"no stream", "carol", sign(t, tokenSecret, "carol", nil, time.Minute), 404, "no_stream"},
	} {
		if code, out := refresh(t, srv, c.id, c.token); code != c.status || out["code"] != c.code {
			t.Errorf("refresh with %s: %d %v; want %d %s", c.name, code, out, c.status, c.code)
		}
	}

	time.Sleep(time.Until(began.Add(3500 * time.Millisecond))) // past the first token's exp
	id := publishTo(t, srv, "alice", "after the first token")
	if ev := s.next(t); ev.Type == "token_expired" || ev.LastEventID != id {
		t.Fatalf("after the first token's exp: %+v; want the event", ev)
	}

	// A shorter token is the stream's token too: the stream ends at its exp.
	code, _ = refresh(t, srv, "alice", sign(t, tokenSecret, "alice", nil, time.Second))
	if code != http.StatusOK {
		t.Fatalf("refresh with a short token: %d", code)
	}
	if ev := s.next(t); ev.Type != "token_expired" {
		t.Fatalf("after the short token's exp: %+v; want token_expired", ev)
	}
	if ok, refused := counter(t, reg, "sseedge_stream_token_refreshes_total", "ok"), counter(t, reg, "sseedge_stream_token_refreshes_total", "refused"); ok != 2 || refused != 5 {
		t.Fatalf("refreshes ok %v, refused %v; want 2 and 5", ok, refused)
	}
}

// publishTo sends an event to a client's stream and returns its ID.
func publishTo(t *testing.T, srv *testServer, id, data string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.url+"/clients/"+id+"/events", strings.NewReader(fmt.Sprintf(`{"data":%q}`, data)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("client event: %d %v %v", resp.StatusCode, out, err)
	}
	return out["id"].(string)
}

// TestTokenStreamsCostNoGoroutines: streams with token deadlines are watched by the edge's existing
// ticks: holding a thousand, some of them about to expire, adds no goroutine per stream.
func TestTokenStreamsCostNoGoroutines(t *testing.T) {
	srv, _ := tokenServer(t)
	soon := sign(t, tokenSecret, "soon", []string{"/t"}, 6*time.Second) // outlives opening 1,000 streams under -race on 2 cores
	later := sign(t, tokenSecret, "later", []string{"/t"}, time.Hour)
	before := runtime.NumGoroutine()
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		tok := later
		if i%2 == 0 {
			tok = soon
		}
		c, _ := rawStream(t, srv.addr, "/subscribe/t?token="+tok)
		conns = append(conns, c)
	}
	testutil.WaitFor(t, "streams", func() bool { return srv.Stats().TopicStreams == n })
	runtime.GC()
	if added := runtime.NumGoroutine() - before; added >= 50 {
		t.Fatalf("%d streams with tokens added %d goroutines; want fewer than 50", n, added)
	}
	testutil.WaitFor(t, "the short tokens' streams to end", func() bool { return srv.Stats().TopicStreams == n/2 })
}
