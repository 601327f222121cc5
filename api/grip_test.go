package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/teststack"
	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/registry"
)

// seen is what a Go GRIP function saw of one call.
type seen struct {
	Method, Path, Query, Cookie, LastEventID, Authorization, Body, Traceparent string
	ClientSig                                                                  bool // a Grip-Sig other than the edge's reached it
}

// gripFunction is a GRIP function without any library: it checks Grip-Sig (HS256, iss sseedge, with
// gripKey), records each call and answers with answer.
type gripFunction struct {
	*testutil.FunctionServer
	mu    sync.Mutex
	calls []seen
}

func newGripFunction(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *gripFunction {
	t.Helper()
	f := &gripFunction{}
	f.FunctionServer = testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_, err := jwt.Parse(r.Header.Get("Grip-Sig"), func(*jwt.Token) (any, error) { return []byte(gripKey), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(grip.Issuer), jwt.WithExpirationRequired())
		f.mu.Lock()
		f.calls = append(f.calls, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Cookie: r.Header.Get("Cookie"),
			LastEventID: r.Header.Get("Last-Event-ID"), Authorization: r.Header.Get("Authorization"), Body: string(body),
			Traceparent: r.Header.Get("Traceparent"),
			ClientSig:   err != nil && r.Header.Get("Grip-Sig") != ""})
		f.mu.Unlock()
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":%q}`, err.Error())
			return
		}
		answer(w, r)
	})
	return f
}

func (f *gripFunction) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.calls...)
}

// holdNews answers Grip-Hold: stream on channel news with a first event.
func holdNews(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Grip-Hold", "stream")
	w.Header().Set("Grip-Channel", "news")
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, "event: welcome\ndata: hi\n\n") //nolint:errcheck
}

func gripItem(channel, content string) string {
	b, _ := json.Marshal(map[string]any{"channel": channel, "formats": map[string]any{"http-stream": map[string]string{"content": content}}})
	return string(b)
}

// TestGripHoldStream: a function answers Grip-Hold: stream; the client gets its first event, then what
// GRIP publishes send to the channel, each once with the edge's id; a reconnect with Last-Event-ID calls
// the function again and replays what was missed, once; action close ends the stream.
func TestGripHoldStream(t *testing.T) {
	e := newGripEdge(t, nil)
	fn := newGripFunction(t, holdNews)
	e.register("live", fn.URL+"/base", nil)

	s := openStream(t, e.url+"/grip/live/stream/x?room=1", "Cookie", "session=abc", "Authorization", "Bearer user-token",
		"Grip-Sig", "forged-by-the-client")
	if ev := s.Next(t); ev.Type != "welcome" || ev.Data != "hi" || ev.LastEventID != "" {
		t.Fatalf("first event %+v, want welcome without an id", ev)
	}
	calls := fn.seen()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	if c := calls[0]; c.Method != "GET" || c.Path != "/base/stream/x" || c.Query != "room=1" || c.Cookie != "session=abc" ||
		c.Authorization != "Bearer user-token" || c.ClientSig {
		t.Errorf("the function saw %+v", c)
	}

	e.publish(`{"items": [` + gripItem("news", "event: update\ndata: one\n\n") + `, ` + gripItem("news", "data: two\n\n") + `]}`)
	one, two := s.Next(t), s.Next(t)
	if one.Type != "update" || one.Data != "one" || one.LastEventID == "" || two.Type != "" || two.Data != "two" || two.LastEventID == "" {
		t.Fatalf("published events %+v %+v", one, two)
	}
	e.publish(`{"items": [` + gripItem("other", "data: not for us\n\n") + `]}`)
	s.ExpectNone(t, 100*time.Millisecond)
	s.Close()

	// Missed while away: three; the client resumes after "one".
	e.publish(`{"items": [` + gripItem("news", "data: three\n\n") + `]}`)
	r := openStream(t, e.url+"/grip/live/stream/x", "Last-Event-ID", one.LastEventID)
	if ev := r.Next(t); ev.Type != "welcome" || ev.LastEventID != one.LastEventID {
		t.Fatalf("first event of the resumed stream %+v, want welcome with id %s", ev, one.LastEventID)
	}
	if c := fn.seen(); len(c) != 2 || c[1].LastEventID != one.LastEventID {
		t.Fatalf("the function was not called again with Last-Event-ID: %+v", c)
	}
	for _, want := range []string{"two", "three"} {
		if ev := r.Next(t); ev.Data != want {
			t.Fatalf("replayed %+v, want %s", ev, want)
		}
	}
	r.ExpectNone(t, 100*time.Millisecond)

	e.publish(`{"items": [{"channel": "news", "formats": {"http-stream": {"action": "close"}}}]}`)
	r.Ended(t)
	if n := e.counter("sseedge_grip_requests_total", "outcome", "held"); n != 2 {
		t.Errorf("grip_requests_total{outcome=held} = %v, want 2", n)
	}
	if n := e.counter("sseedge_grip_publish_items_total", "action", "close"); n != 1 {
		t.Errorf("grip_publish_items_total{action=close} = %v, want 1", n)
	}
}

// TestGripFreshStreamResumes: a client that leaves before anything is published still resumes without a
// gap: the stream's cursor comes right after the function's first events.
func TestGripFreshStreamResumes(t *testing.T) {
	e := newGripEdge(t, nil)
	fn := newGripFunction(t, holdNews)
	e.register("live", fn.URL, nil)
	s := openStream(t, e.url+"/grip/live/")
	if ev := s.Next(t); ev.Type != "welcome" {
		t.Fatalf("first event %+v", ev)
	}
	at := s.Cursor(t)
	s.Close()
	e.publish(`{"items": [` + gripItem("news", "data: missed\n\n") + `]}`)
	r := openStream(t, e.url+"/grip/live/", "Last-Event-ID", at)
	if ev := r.Next(t); ev.Type != "welcome" || ev.LastEventID != at {
		t.Fatalf("first event %+v, want welcome with id %s", ev, at)
	}
	if ev := r.Next(t); ev.Data != "missed" {
		t.Fatalf("replayed %+v, want missed", ev)
	}
}

// TestGripOriginRefused: a GRIP stream from an origin CORS does not allow is refused as any stream is
// (403 JSON), and counted.
func TestGripOriginRefused(t *testing.T) {
	e := newGripEdge(t, func(c *teststack.Config) { c.CORSOrigins = []string{"https://ok.example"} })
	fn := newGripFunction(t, holdNews)
	e.register("live", fn.URL, nil)
	st, _, b := e.do("GET", "/grip/live/x", "", "Origin", "https://evil.example")
	if _, code := errorBody(t, b); st != 403 || code != "origin_not_allowed" {
		t.Fatalf("%d %s, want 403 origin_not_allowed", st, b)
	}
	if n := e.counter("sseedge_grip_requests_total", "outcome", "stream_refused"); n != 1 {
		t.Errorf("grip_requests_total{outcome=stream_refused} = %v, want 1", n)
	}
	s := openStream(t, e.url+"/grip/live/x", "Origin", "https://ok.example")
	if ev := s.Next(t); ev.Type != "welcome" {
		t.Fatalf("allowed origin: %+v", ev)
	}
}

// TestGripProxied: answers without Grip-Hold reach the client unchanged: status, headers, body.
func TestGripProxied(t *testing.T) {
	e := newGripEdge(t, nil)
	fn := newGripFunction(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Answer", "42")
			w.Header().Set("Grip-Channel", "")  // as @fanoutio/grip writes it when no channel was added
			io.WriteString(w, `{"plain":true}`) //nolint:errcheck
		case "/echo":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, r.Method+" "+r.Header.Get("Content-Type")) //nolint:errcheck
		case "/forbidden":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"forbidden"}`) //nolint:errcheck
		default:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "boom") //nolint:errcheck
		}
	})
	e.register("fn", fn.URL, nil)
	for _, c := range []struct {
		method, path, body, ct string
		status                 int
		wantCT, wantBody       string
	}{
		{"GET", "/grip/fn/plain", "", "", 200, "application/json", `{"plain":true}`},
		{"POST", "/grip/fn/echo", "x=1", "application/x-www-form-urlencoded", 201, "text/plain", "POST application/x-www-form-urlencoded"},
		{"GET", "/grip/fn/forbidden", "", "", 403, "application/json", `{"error":"forbidden"}`},
		{"GET", "/grip/fn/fails", "", "", 500, "", "boom"},
	} {
		st, h, b := e.do(c.method, c.path, c.body, "Content-Type", c.ct)
		if st != c.status || string(b) != c.wantBody || c.wantCT != "" && h.Get("Content-Type") != c.wantCT {
			t.Errorf("%s %s: %d %v %q, want %d %s %q", c.method, c.path, st, h, b, c.status, c.wantCT, c.wantBody)
		}
		if h.Get("Grip-Channel") != "" {
			t.Errorf("%s: a Grip-* header reached the client: %v", c.path, h)
		}
	}
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	if st, h, _ := e.do("GET", "/grip/fn/plain", "", "Traceparent", "00-"+trace+"-00f067aa0ba902b7-01"); h.Get("X-Answer") != "42" {
		t.Errorf("proxied header lost: %d %v", st, h)
	}
	// The call joins the caller's trace (W3C traceparent), as an invoke does.
	if calls := fn.seen(); !strings.Contains(calls[len(calls)-1].Traceparent, trace) {
		t.Errorf("the function got traceparent %q, want one in trace %s", calls[len(calls)-1].Traceparent, trace)
	}
	if calls := fn.seen(); calls[1].Body != "x=1" {
		t.Errorf("POST body %q reached the function", calls[1].Body)
	}
	if n := e.counter("sseedge_grip_requests_total", "outcome", "proxied"); n != 5 {
		t.Errorf("grip_requests_total{outcome=proxied} = %v, want 5", n)
	}
	// Not a GRIP function, or none: 404.
	e.register("plain", fn.URL, func(f *registry.Function) { f.Grip = false })
	for _, p := range []string{"/grip/plain/x", "/grip/nobody/x", "/grip/", "/grip/bad%20name/x"} {
		if st, _, b := e.do("GET", p, ""); st != 404 || !strings.Contains(string(b), `"not_found"`) {
			t.Errorf("%s: %d %s", p, st, b)
		}
	}
}

// TestGripBadAnswers: an answer the edge cannot honour is a 502 (501 for Grip-Hold: response) with a
// JSON error, a log line and a metric, and nothing is held.
func TestGripBadAnswers(t *testing.T) {
	e := newGripEdge(t, nil)
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	answers := map[string]func(w http.ResponseWriter){
		"unknown": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "news")
			w.Header().Set("Grip-Frobnicate", "yes")
		},
		"many": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", strings.Join(many, ", "))
		},
		"huge": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "news")
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: "+strings.Repeat("x", 2<<20)+"\n\n") //nolint:errcheck
		},
		"malformed": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", `news; prev-id="7`)
		},
		"badchannel": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "/news/")
		},
		"response": func(w http.ResponseWriter) {
			w.Header().Set("Grip-Hold", "response")
			w.Header().Set("Grip-Channel", "news")
		},
	}
	fn := newGripFunction(t, func(w http.ResponseWriter, r *http.Request) { answers[strings.TrimPrefix(r.URL.Path, "/")](w) })
	e.register("bad", fn.URL, nil)
	for path, want := range map[string]struct {
		status int
		code   string
	}{
		"unknown": {502, "grip_unknown_instruction"}, "many": {502, "grip_too_many"}, "huge": {502, "grip_too_large"},
		"malformed": {502, "grip_malformed"}, "badchannel": {502, "grip_bad_channel"}, "response": {501, "grip_hold_response_unsupported"},
	} {
		st, h, b := e.do("GET", "/grip/bad/"+path, "")
		if st != want.status || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %v %s, want %d JSON", path, st, h, b, want.status)
			continue
		}
		if _, code := errorBody(t, b); code != want.code {
			t.Errorf("%s: code %s, want %s (%s)", path, code, want.code, b)
		}
		if n := e.counter("sseedge_grip_requests_total", "outcome", want.code); n != 1 {
			t.Errorf("%s: grip_requests_total{outcome=%s} = %v, want 1", path, want.code, n)
		}
	}
	if st := e.stack.Stats(); st.TopicStreams != 0 {
		t.Errorf("%d topic streams held after refused answers", st.TopicStreams)
	}
}

// TestGripFunctionFailures: a function that hangs hits its deadline (504), one that keeps failing
// opens its breaker (then 503 circuit_open), always with a JSON error and counted; a call with effects
// (POST) is not retried, a GET is.
func TestGripFunctionFailures(t *testing.T) {
	e := newGripEdge(t, nil)
	release := make(chan struct{})
	hang := newGripFunction(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	e.register("hang", hang.URL, func(f *registry.Function) { f.Timeout = registry.Duration(200 * time.Millisecond) })
	st, _, b := e.do("GET", "/grip/hang/x", "")
	if _, code := errorBody(t, b); st != 504 || code != "timeout" {
		t.Errorf("hanging function: %d %s, want 504 timeout", st, b)
	}

	down := newGripFunction(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	e.register("down", down.URL, func(f *registry.Function) {
		f.Retry = registry.Retry{MaxAttempts: 3, BackoffBase: registry.Duration(time.Millisecond)}
		f.Breaker.ConsecutiveFailures = 4
	})
	st, _, b = e.do("POST", "/grip/down/x", "{}")
	if _, code := errorBody(t, b); st != 502 || code != "upstream_error" || down.Hits.Load() != 1 {
		t.Errorf("POST to a failing function: %d %s after %d calls, want 502 upstream_error after 1 (no retry)", st, b, down.Hits.Load())
	}
	st, _, b = e.do("GET", "/grip/down/x", "")
	if _, code := errorBody(t, b); st != 502 || code != "upstream_error" || down.Hits.Load() != 4 {
		t.Errorf("GET to a failing function: %d %s after %d calls, want 502 upstream_error after 4 (3 attempts)", st, b, down.Hits.Load())
	}
	st, _, b = e.do("GET", "/grip/down/x", "")
	if _, code := errorBody(t, b); st != 503 || code != "circuit_open" || down.Hits.Load() != 4 {
		t.Errorf("open breaker: %d %s after %d calls, want 503 circuit_open, no call", st, b, down.Hits.Load())
	}
	for outcome, want := range map[string]float64{"timeout": 1, "upstream_error": 2, "circuit_open": 1} {
		if n := e.counter("sseedge_grip_requests_total", "outcome", outcome); n != want {
			t.Errorf("grip_requests_total{outcome=%s} = %v, want %v", outcome, n, want)
		}
	}
	if n := e.counter("sseedge_invocations_total", "outcome", "circuit_open"); n != 1 {
		t.Errorf("invocations_total{outcome=circuit_open} = %v, want 1", n)
	}
}

// TestGripPublishAuth: POST /publish/ takes the admin token or a GRIP control JWT signed with
// GRIP_KEY, never the edge's own Grip-Sig; a bad body is a 400; POST /publish/{topic} keeps its format.
func TestGripPublishAuth(t *testing.T) {
	e := newGripEdge(t, nil)
	body := `{"items": [` + gripItem("news", "data: x\n\n") + `]}`
	jwtFor := func(iss string, key string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "exp": time.Now().Add(time.Minute).Unix()}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signer, _ := grip.NewSigner([]byte(gripKey), 0)
	sig, _ := signer.Sign()
	for name, c := range map[string]struct {
		auth   string
		status int
	}{
		"admin": {"Bearer " + gripAdmin, 200}, "control JWT": {"Bearer " + jwtFor("backend", gripKey), 200},
		"none": {"", 401}, "wrong token": {"Bearer nope", 401}, "JWT of another key": {"Bearer " + jwtFor("backend", "other"), 401},
		"the edge's Grip-Sig": {"Bearer " + sig, 401},
	} {
		st, _, b := e.do("POST", "/publish/", body, "Authorization", c.auth)
		if st != c.status {
			t.Errorf("%s: %d %s, want %d", name, st, b, c.status)
		}
	}
	st, _, b := e.do("POST", "/publish/", `{"items": [{"channel": "news"}]}`, "Authorization", "Bearer "+gripAdmin)
	if _, code := errorBody(t, b); st != 400 || code != "grip_unsupported" {
		t.Errorf("an item without http-stream: %d %s", st, b)
	}
	st, _, b = e.do("POST", "/publish/news", `{"event": "e", "data": "plain"}`, "Authorization", "Bearer "+gripAdmin)
	if st != 200 || !strings.Contains(string(b), `"id"`) {
		t.Errorf("POST /publish/news: %d %s", st, b)
	}
	if n := e.counter("sseedge_grip_publish_refused_total", "code", "grip_unauthorized"); n != 4 {
		t.Errorf("grip_publish_refused_total{code=grip_unauthorized} = %v, want 4", n)
	}
}
