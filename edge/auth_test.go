package edge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/teststack"
)

const adminToken = "admin-secret-token"

var tokenSecret = []byte("stream-token-secret")

func securedServer(t *testing.T) *testServer {
	return start(t, teststack.Config{
		AdminAuth:   auth.NewAdminAuth(adminToken),
		MetricsAuth: auth.NewAdminAuth("metrics-token"),
		StreamAuth:  auth.NewStreamAuth(tokenSecret),
	})
}

func sign(t *testing.T, secret []byte, sub string, topics []string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(secret, sub, topics, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call makes a request and returns the status and the error code of a JSON error body.
func call(t *testing.T, method, url, bearer string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

func TestAdminAuth(t *testing.T) {
	srv := securedServer(t)
	body := `{"data":"x"}`
	cases := []struct {
		method, path, bearer string
		status               int
		code                 string
	}{
		{"POST", "/publish/t", "", 401, "admin_token_missing"},
		{"POST", "/publish/t", "wrong", 401, "admin_token_invalid"},
		{"POST", "/publish/t", adminToken, 200, ""},
		{"POST", "/clients/alice/events", "", 401, "admin_token_missing"},
		{"POST", "/clients/alice/events", adminToken, 200, ""},
		{"GET", "/admin/connections", "", 401, "admin_token_missing"},
		{"GET", "/admin/connections", adminToken, 200, ""},
		{"GET", "/debug/vars", "", 401, "admin_token_missing"},
		{"GET", "/admin/health", "", 200, ""},
		{"GET", "/metrics", "", 401, "admin_token_missing"},
		{"POST", "/publish/_sseedge/status", adminToken, 403, "reserved_topic"},
	}
	for _, c := range cases {
		status, code := call(t, c.method, srv.url+c.path, c.bearer, body)
		if status != c.status || (c.code != "" && code != c.code) {
			t.Errorf("%s %s with %q: %d %q; want %d %q", c.method, c.path, c.bearer, status, code, c.status, c.code)
		}
	}
	// The health answer reveals no secret.
	resp, _ := http.Get(srv.url + "/admin/health")
	var raw strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	resp.Body.Close()
	raw.Write(buf[:n])
	if strings.Contains(raw.String(), adminToken) || strings.Contains(raw.String(), string(tokenSecret)) {
		t.Errorf("health reveals a secret: %s", raw.String())
	}
}

func TestStreamAuth(t *testing.T) {
	srv := securedServer(t)
	alice := sign(t, tokenSecret, "alice", []string{"/pets"}, time.Minute)
	forged := sign(t, []byte("another secret"), "alice", []string{"/pets"}, time.Minute)
	expired := signExpired(t, "alice")

	cases := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"missing", "/sse/alice", "", 401, "token_missing"},
		{"wrong signature", "/sse/alice", forged, 401, "token_invalid"},
		{"garbage", "/sse/alice", "not.a.jwt", 401, "token_invalid"},
		{"expired", "/sse/alice", expired, 401, "token_expired"},
		{"someone else's stream", "/sse/bob", alice, 403, "token_wrong_subject"},
		{"topic not granted", "/subscribe/cars", alice, 403, "token_topic_denied"},
		{"prefix is not a segment", "/subscribe/petsitters", alice, 403, "token_topic_denied"},
		{"reserved topic", "/subscribe/_sseedge/status", alice, 401, "admin_token_invalid"},
	}
	for _, c := range cases {
		// Through the edge's own head parser, with the token in the query...
		path := c.path
		if c.token != "" {
			path += "?token=" + c.token
		}
		status, body := rawRequest(t, srv.addr, []byte("GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"))
		var e struct{ Code, Error string }
		json.Unmarshal(body, &e)
		if status != c.status || e.Code != c.code {
			t.Errorf("%s (query): %d %s; want %d %s", c.name, status, body, c.status, c.code)
		}
		// ...and through fasthttp on a keep-alive connection, with the header.
		c2, r := dialRaw(t, srv.addr, fmt.Sprintf(
			"GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\nX-Authorization: Bearer %s\r\n\r\n", c.path, c.token))
		if got := secondStatus(t, r); got != c.status {
			t.Errorf("%s (header, keep-alive): %d; want %d", c.name, got, c.status)
		}
		c2.Close()
	}
	// The expired token's answer tells the client not to retry blindly.
	_, body := rawRequest(t, srv.addr, []byte("GET /sse/alice?token="+expired+" HTTP/1.1\r\nHost: x\r\n\r\n"))
	if !strings.Contains(string(body), "new token") {
		t.Errorf("expired token answer %s does not say to get a new token", body)
	}

	// Valid tokens open their streams, by query or header.
	s := openSSE(t, srv.url+"/sse/alice?token="+alice, nil)
	if ev := s.next(t); ev.Type != "connected" {
		t.Fatalf("alice's stream: %+v", ev)
	}
	openSSE(t, srv.url+"/subscribe/pets/dogs", http.Header{"X-Authorization": {"Bearer " + alice}})
	openSSE(t, srv.url+"/subscribe/_sseedge/status?token="+adminToken, nil)
}

// TestStreamAuthOnKeepAlive checks the hijack path refuses what the raw path refuses.
func TestStreamAuthOnKeepAlive(t *testing.T) {
	srv := securedServer(t)
	alice := sign(t, tokenSecret, "alice", []string{"/pets"}, time.Minute)
	for path, want := range map[string]int{"/sse/bob": 403, "/subscribe/cars": 403, "/sse/alice": 200} {
		req := fmt.Sprintf("GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\nX-Authorization: %s\r\n\r\n", path, alice)
		c, r := dialRaw(t, srv.addr, req)
		if got := secondStatus(t, r); got != want {
			t.Errorf("%s on keep-alive: %d; want %d", path, got, want)
		}
		c.Close()
	}
}

func TestStreamsPerIPLimit(t *testing.T) {
	srv := start(t, teststack.Config{MaxStreamsPerIP: 3})
	for range 3 {
		c, _ := rawStream(t, srv.addr, "/subscribe/lim")
		defer c.Close()
	}
	status, body := rawRequest(t, srv.addr, []byte("GET /subscribe/lim HTTP/1.1\r\nHost: x\r\n\r\n"))
	if status != 429 || !strings.Contains(string(body), "too_many_streams") {
		t.Fatalf("4th stream: %d %s; want 429", status, body)
	}
}

// signExpired makes a token that expired a minute ago, beyond the verifier's leeway.
func signExpired(t *testing.T, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "topics": []string{"/pets"}, "exp": time.Now().Add(-time.Minute).Unix(),
	}).SignedString(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
