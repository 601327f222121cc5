package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Secrets of the secured nodes: distinctive, so a leak into a response body is easy to spot.
const (
	secAdminToken  = "adm-7c1f0e9a-never-echo"
	secTokenSecret = "sec-52b8d4e6-never-echo"
)

// call sends a JSON request with an optional admin bearer token and returns the status, headers and
// raw body.
func call(t *testing.T, method, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// apiError decodes {"error","code"}, failing the test when the body is not that shape.
func apiError(t *testing.T, raw []byte) (msg, code string) {
	t.Helper()
	var e struct{ Error, Code string }
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" || e.Code == "" {
		t.Fatalf("error body %q is not {\"error\",\"code\"}: %v", raw, err)
	}
	return e.Error, e.Code
}

// registerFn registers a function and returns the status and body.
func registerFn(t *testing.T, node *edgeNode, token, name, endpoint string) (int, []byte) {
	t.Helper()
	st, _, raw := call(t, "POST", node.url+"/admin/functions", token, fmt.Sprintf(`{"name":%q,"endpoint":%q}`, name, endpoint))
	return st, raw
}

// expectRefused checks that registering endpoint is refused with 400 endpoint_refused naming the field.
func expectRefused(t *testing.T, node *edgeNode, token, endpoint string) {
	t.Helper()
	st, raw := registerFn(t, node, token, "refused", endpoint)
	if st != http.StatusBadRequest {
		t.Errorf("register %s: %d %s; want 400 endpoint_refused", endpoint, st, raw)
		return
	}
	if msg, code := apiError(t, raw); code != "endpoint_refused" || !strings.Contains(msg, "endpoint") {
		t.Errorf("register %s: %s %q; want code endpoint_refused naming the endpoint field", endpoint, code, msg)
	}
}

func expectAccepted(t *testing.T, node *edgeNode, token, name, endpoint string) {
	t.Helper()
	if st, raw := registerFn(t, node, token, name, endpoint); st != http.StatusCreated && st != http.StatusOK {
		t.Errorf("register %s: %d %s; want it accepted", endpoint, st, raw)
	}
}

// loopbackAllow is FUNCTION_ALLOW covering what localhost resolves to here: 127.0.0.0/8, plus ::1 where
// localhost also has an IPv6 address (the policy refuses a name if any of its addresses is refused).
func loopbackAllow(t *testing.T) string {
	ips, err := net.LookupIP("localhost")
	if err != nil {
		t.Fatalf("resolve localhost: %v", err)
	}
	allow := "127.0.0.0/8"
	for _, ip := range ips {
		if ip.To4() == nil && ip.IsLoopback() {
			allow += ",::1"
			break
		}
	}
	return allow
}

// TestFunctionEndpointGuard: function endpoints cannot point the edge at cloud metadata, the private
// network or its own host, unless FUNCTION_ALLOW says so; without secrets loopback is allowed.
func TestFunctionEndpointGuard(t *testing.T) {
	secrets := []string{"ADMIN_TOKEN=" + secAdminToken, "TOKEN_SECRET=" + secTokenSecret}
	metadata, private, loopback := "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x", "http://localhost:9/x"

	t.Run("with secrets", func(t *testing.T) {
		node := startNode(t, "sec-guard", secrets...)
		if st, _ := registerFn(t, node, "", "anon", "https://example.com/"); st != http.StatusUnauthorized {
			t.Errorf("register without the admin token: %d; want 401", st)
		}
		for _, ep := range []string{metadata, private, loopback, "http://127.0.0.1:9/x", "http://[::1]:9/x", "http://[::ffff:169.254.169.254]/x"} {
			expectRefused(t, node, secAdminToken, ep)
		}
		if st, _, raw := call(t, "GET", node.url+"/admin/functions/refused", secAdminToken, ""); st != http.StatusNotFound {
			t.Errorf("a refused function was stored: %d %s", st, raw)
		}
	})

	t.Run("with secrets and FUNCTION_ALLOW loopback", func(t *testing.T) {
		allow := loopbackAllow(t)
		node := startNode(t, "sec-allow", append(secrets, "FUNCTION_ALLOW="+allow)...)
		expectAccepted(t, node, secAdminToken, "local", loopback)
		expectAccepted(t, node, secAdminToken, "local-ip", "http://127.0.0.1:9/x")
		expectRefused(t, node, secAdminToken, metadata)
		expectRefused(t, node, secAdminToken, private)
	})

	t.Run("without secrets", func(t *testing.T) {
		node := startNode(t, "open-guard")
		expectAccepted(t, node, "", "local", loopback)
		expectAccepted(t, node, "", "local-ip", "http://127.0.0.1:9/x")
		expectRefused(t, node, "", metadata)
		expectRefused(t, node, "", private)
	})
}

// crashingFunction is a function server whose first crashes calls read the request and then drop the
// connection without answering, as a process killed mid-invoke would; later calls echo {"ok": true}.
func crashingFunction(t *testing.T, crashes int64) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n := calls.Add(1); crashes < 0 || n <= crashes {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestFunctionCrashMidInvoke kills a function mid-invoke: a crash on the first call is retried and the
// invoke succeeds on the second attempt; a function that always crashes gives 502 upstream_error within
// its timeout, and the node keeps serving.
func TestFunctionCrashMidInvoke(t *testing.T) {
	node := startNode(t, "chaos")

	t.Run("crash once", func(t *testing.T) {
		fn, calls := crashingFunction(t, 1)
		expectAccepted(t, node, "", "flaky", fn.URL+"/run")
		st, hdr, raw := call(t, "POST", node.url+"/invoke/flaky", "", `{"payload":{"n":1}}`)
		if st != http.StatusOK || strings.TrimSpace(string(raw)) != `{"ok":true}` {
			t.Fatalf("invoke after one crash: %d %s; want 200 from the second attempt", st, raw)
		}
		if got := hdr.Get("X-Invocation-Attempts"); got != "2" || calls.Load() != 2 {
			t.Errorf("X-Invocation-Attempts %q with %d calls reaching the function; want 2 and 2 (the crashed attempt counted)", got, calls.Load())
		}
	})

	t.Run("always crashes", func(t *testing.T) {
		fn, calls := crashingFunction(t, -1)
		const timeout = 5 * time.Second
		st, _, raw := call(t, "POST", node.url+"/admin/functions", "",
			fmt.Sprintf(`{"name":"dead","endpoint":%q,"timeout":"%s"}`, fn.URL+"/run", timeout))
		if st != http.StatusCreated {
			t.Fatalf("register: %d %s", st, raw)
		}
		began := time.Now()
		st, hdr, raw := call(t, "POST", node.url+"/invoke/dead", "", `{"payload":1}`)
		took := time.Since(began)
		if st != http.StatusBadGateway {
			t.Fatalf("invoke of a crashing function: %d %s; want 502", st, raw)
		}
		if _, code := apiError(t, raw); code != "upstream_error" {
			t.Errorf("code %q; want upstream_error", code)
		}
		if took >= timeout {
			t.Errorf("answered after %v; want within the function timeout %v", took, timeout)
		}
		t.Logf("always-crashing function: 502 after %v, X-Invocation-Attempts %s, %d calls reached it", took.Round(time.Millisecond), hdr.Get("X-Invocation-Attempts"), calls.Load())

		// The node keeps serving: a subscriber receives a publish made after the failures.
		sub := subscribe(t, node.url+"/subscribe/after-crash", "")
		if st, out := request(t, "POST", node.url+"/publish/after-crash", `{"event":"still","data":"up"}`); st != http.StatusOK {
			t.Fatalf("publish after the crashes: %d %v", st, out)
		}
		if ev, ok := sub.next(t); !ok || ev.Type != "still" || ev.Data != "up" {
			t.Fatalf("after the crashes got %+v (stream open %v)", ev, ok)
		}
		if st, _ := request(t, "GET", node.url+"/admin/health", ""); st != http.StatusOK {
			t.Errorf("health after the crashes: %d", st)
		}
	})
}

// TestHealthOpenWithoutLeakingSecrets: with the admin token set, GET /admin/health needs no credentials
// (load balancers probe it) and its body names neither secret; the rest of /admin still does.
func TestHealthOpenWithoutLeakingSecrets(t *testing.T) {
	node := startNode(t, "sec-health", "ADMIN_TOKEN="+secAdminToken, "TOKEN_SECRET="+secTokenSecret, "METRICS_TOKEN=")
	st, _, raw := call(t, "GET", node.url+"/admin/health", "", "")
	if st != http.StatusOK || !json.Valid(raw) {
		t.Fatalf("health without credentials: %d %s; want 200 JSON", st, raw)
	}
	for _, secret := range []string{secAdminToken, secTokenSecret} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("health body contains a secret: %s", raw)
		}
	}
	if st, _, raw := call(t, "GET", node.url+"/admin/connections", "", ""); st != http.StatusUnauthorized {
		t.Errorf("GET /admin/connections without the token: %d %s; want 401", st, raw)
	}
	if st, _, raw := call(t, "GET", node.url+"/admin/connections", secAdminToken, ""); st != http.StatusOK {
		t.Errorf("GET /admin/connections with the token: %d %s", st, raw)
	} else if strings.Contains(string(raw), secAdminToken) || strings.Contains(string(raw), secTokenSecret) {
		t.Errorf("connections body contains a secret: %s", raw)
	}
}
