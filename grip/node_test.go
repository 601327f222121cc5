package grip_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/grip"
	"github.com/sseedge/sseedge/internal/testutil"
)

// nodeRig returns node's path and a directory holding testdata/node with its npm dependencies installed
// (testutil.NodeRig).
func nodeRig(t *testing.T) (node, dir string) {
	t.Helper()
	return testutil.NodeRig(t, "grip-rig", filepath.Join("testdata", "node"),
		[]string{"package.json", "package-lock.json", ".npmrc", "function.mjs", "publish.mjs"}, filepath.Join("@fanoutio", "serve-grip"))
}

// startFunction runs function.mjs with key and returns its base URL; the process ends with the test.
func startFunction(t *testing.T, key string) string {
	t.Helper()
	node, dir := nodeRig(t)
	return testutil.StartNodeServer(t, node, dir, "function.mjs", "GRIP_KEY="+key)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, url, sig string, extra ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sig != "" {
		req.Header.Set(grip.HeaderSig, sig)
	}
	for i := 0; i < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// TestServeGripFunction calls a function built on @fanoutio/serve-grip with the edge's Grip-Sig, and
// reads its answers with ParseInstruct.
func TestServeGripFunction(t *testing.T) {
	const key = "grip-test-key"
	base := startFunction(t, key)
	signer, err := grip.NewSigner([]byte(key), 0)
	if err != nil {
		t.Fatal(err)
	}
	sign := func() string {
		s, err := signer.Sign()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	a := call(t, base+"/stream?room=1", sign(), "Cookie", "session=abc", "Last-Event-ID", "7-1")
	if a.status != 200 {
		t.Fatalf("/stream: %d %s", a.status, a.body)
	}
	in, err := grip.ParseInstruct(a.status, a.header, a.body, grip.Limits{})
	if err != nil {
		t.Fatalf("/stream answer %v %q: %v", a.header, a.body, err)
	}
	if in.Hold != grip.HoldStream || in.Status != 200 {
		t.Errorf("hold %v, status %d", in.Hold, in.Status)
	}
	if want := []grip.Channel{{Name: "news", Topic: "/news"}, {Name: "pets/dogs", Topic: "/pets/dogs", PrevID: "41"}}; !reflect.DeepEqual(in.Channels, want) {
		t.Errorf("channels %+v, want %+v", in.Channels, want)
	}
	if ka := in.KeepAlive; ka == nil || string(ka.Content) != ":\n\n" || ka.Interval != 20*time.Second {
		t.Errorf("keep-alive %+v", ka)
	}
	if want := []fanout.Event{{Name: "welcome", Data: []byte(`{"hello": "stream"}`)}}; !reflect.DeepEqual(in.Events, want) {
		t.Errorf("events %q, want %q", in.Events, want)
	}
	if got, want := in.Header.Get("X-Seen"), `{"cookie":"session=abc","lastEventId":"7-1","query":"?room=1"}`; got != want {
		t.Errorf("the function saw %s, want %s", got, want)
	}
	if in.Header.Get("Content-Type") != "" || in.Header.Get("Grip-Hold") != "" {
		t.Errorf("client header of a held stream: %v", in.Header)
	}

	// The plain path answers without GRIP: passed through as it is.
	a = call(t, base+"/plain", sign())
	in, err = grip.ParseInstruct(a.status, a.header, a.body, grip.Limits{})
	if err != nil || in.Hold != grip.HoldNone || in.Status != 200 || string(in.Body) != `{"plain":true,"signed":true}` || in.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/plain: %+v %v", in, err)
	}
	a = call(t, base+"/forbidden", sign())
	in, err = grip.ParseInstruct(a.status, a.header, a.body, grip.Limits{})
	if err != nil || in.Hold != grip.HoldNone || in.Status != 403 || string(in.Body) != `{"error":"forbidden"}` {
		t.Fatalf("/forbidden: %+v %v", in, err)
	}

	// Signatures the function must refuse: another key, expired, another issuer, garbage, none.
	claims := func(iss string, exp time.Duration, k string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss, "exp": time.Now().Add(exp).Unix()}).SignedString([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, err := grip.NewSigner([]byte("not-the-key"), 0)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := other.Sign()
	if err != nil {
		t.Fatal(err)
	}
	for name, sig := range map[string]string{
		"another key":    otherSig,
		"expired":        claims(grip.Issuer, -time.Minute, key),
		"another issuer": claims("pushpin", time.Minute, key),
		"garbage":        "garbage",
		"none":           "",
	} {
		a := call(t, base+"/stream", sig)
		if a.status != 401 {
			t.Errorf("%s: %d %s, want 401", name, a.status, a.body)
			continue
		}
		in, err := grip.ParseInstruct(a.status, a.header, a.body, grip.Limits{})
		if err != nil || in.Hold != grip.HoldNone || in.Status != 401 {
			t.Errorf("%s: %+v %v", name, in, err)
		}
		// docs/grip.md warns that serve-grip 2.0.0's middleware takes any Grip-Sig for signed; if this
		// fails, a newer serve-grip checks it: update the warning.
		if want := fmt.Sprint(sig != ""); a.header.Get("X-Middleware-Signed") != want {
			t.Errorf("%s: serve-grip's middleware says signed=%s, docs/grip.md says %s", name, a.header.Get("X-Middleware-Signed"), want)
		}
	}
}

// publishRecorder is a control endpoint: it records each request and answers as the edge would.
type publishRecorder struct {
	auth grip.Authorizer
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, contentType, authorization string
	items                                    []grip.Item
	err                                      error
}

func (p *publishRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	rec := recorded{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), authorization: r.Header.Get("Authorization")}
	if err == nil {
		err = p.auth.Authorize(rec.authorization)
	}
	if err == nil {
		rec.items, err = grip.ParsePublish(body, grip.Limits{})
	}
	rec.err = err
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
	if ge, ok := err.(*grip.Error); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ge.Status)
		json.NewEncoder(w).Encode(map[string]string{"error": ge.Error(), "code": string(ge.Code)}) //nolint:errcheck
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "Published\n") //nolint:errcheck
}

func (p *publishRecorder) take() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// TestGripPublisher runs @fanoutio/grip's Publisher against a control endpoint that parses with
// ParsePublish and authorizes with Authorizer: what it sends, with either way of authorizing.
func TestGripPublisher(t *testing.T) {
	node, dir := nodeRig(t)
	verifier, err := grip.NewControlVerifier([]byte("control-key"), "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &publishRecorder{auth: grip.Authorizer{AdminToken: "admin-token", Verifier: verifier}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	publish := func(config map[string]string, publishes string) map[string]any {
		t.Helper()
		cfg, _ := json.Marshal(config)
		return testutil.RunNodeScript(t, node, dir, "publish.mjs", string(cfg), publishes)
	}

	res := publish(map[string]string{"control_uri": srv.URL + "/", "key": "admin-token"}, `[
		{"channel": "news", "content": "event: update\ndata: one\n\n"},
		{"channel": "pets/dogs", "content": "data: a\n\ndata: b\n\n", "id": "2", "prevId": "1"},
		{"channel": "news", "close": true}
	]`)
	if res["ok"] != true {
		t.Fatalf("publish: %v", res)
	}
	reqs := rec.take()
	wantItems := [][]grip.Item{
		{{Channel: "news", Topic: "/news", Events: []fanout.Event{{Name: "update", Data: []byte("one")}}}},
		{{Channel: "pets/dogs", Topic: "/pets/dogs", ID: "2", PrevID: "1", Events: []fanout.Event{{Data: []byte("a")}, {Data: []byte("b")}}}},
		{{Channel: "news", Topic: "/news", Action: grip.ActionClose}},
	}
	if len(reqs) != len(wantItems) {
		t.Fatalf("%d requests, want one a publish: %+v", len(reqs), reqs)
	}
	for i, r := range reqs {
		if r.method != "POST" || r.path != "/publish/" || r.contentType != "application/json" || r.authorization != "Bearer admin-token" || r.err != nil {
			t.Errorf("request %d: %+v", i, r)
		}
		if !reflect.DeepEqual(r.items, wantItems[i]) {
			t.Errorf("request %d: items %+v, want %+v", i, r.items, wantItems[i])
		}
	}

	// With control_iss the Publisher signs a JWT (HS256, iss, exp in 10 minutes) with key; a control
	// URI without a trailing slash gets one before publish/.
	res = publish(map[string]string{"control_uri": srv.URL + "/edge", "control_iss": "backend", "key": "control-key"}, `[{"channel": "news", "content": "data: jwt\n\n"}]`)
	if res["ok"] != true {
		t.Fatalf("publish with a control JWT: %v", res)
	}
	reqs = rec.take()
	if len(reqs) != 1 || reqs[0].path != "/edge/publish/" || reqs[0].err != nil || len(reqs[0].items) != 1 {
		t.Fatalf("publish with a control JWT: %+v", reqs)
	}
	tok := strings.TrimPrefix(reqs[0].authorization, "Bearer ")
	c, err := verifier.Verify(tok)
	if err != nil || c.Issuer != "backend" {
		t.Fatalf("control JWT %q: %+v %v", tok, c, err)
	}
	if left := time.Until(c.ExpiresAt); left < 9*time.Minute || left > 11*time.Minute {
		t.Errorf("the control JWT expires in %v, want about 10m", left)
	}

	// Refusals reach the Publisher as a failed publish with the edge's status and JSON error.
	for name, cfg := range map[string]map[string]string{
		"wrong admin token": {"control_uri": srv.URL + "/", "key": "nope"},
		"wrong JWT key":     {"control_uri": srv.URL + "/", "control_iss": "backend", "key": "nope"},
		"the edge's issuer": {"control_uri": srv.URL + "/", "control_iss": grip.Issuer, "key": "control-key"},
		"no auth":           {"control_uri": srv.URL + "/"},
	} {
		res := publish(cfg, `[{"channel": "news", "content": "data: x\n\n"}]`)
		if res["ok"] != false || res["status"] != 401.0 || !strings.Contains(fmt.Sprint(res["body"]), `"code":"grip_unauthorized"`) {
			t.Errorf("%s: %v", name, res)
		}
		if reqs := rec.take(); len(reqs) != 1 || reqs[0].items != nil {
			t.Errorf("%s: %+v", name, reqs)
		}
	}
	res = publish(map[string]string{"control_uri": srv.URL + "/", "key": "admin-token"}, `[{"channel": "/bad", "content": "data: x\n\n"}]`)
	if res["ok"] != false || res["status"] != 400.0 || !strings.Contains(fmt.Sprint(res["body"]), `"code":"grip_bad_channel"`) {
		t.Errorf("a bad channel: %v", res)
	}
}
