package edge_test

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/teststack"
)

// TestMalformedHeadsAreNotEchoed: a head fasthttp cannot parse is answered without its contents, which
// hold the client's Authorization, X-Authorization and ?token= (issue 18, item 9).
func TestMalformedHeadsAreNotEchoed(t *testing.T) {
	srv := securedServer(t)
	for _, path := range []string{"/admin/connections?token=SECRETQ", "/sse/alice?token=SECRETQ"} {
		status, body := rawRequest(t, srv.addr, []byte("GET "+path+" HTTP/1.1\r\nAuthorization: Bearer SECRETH\r\nX-Authorization: Bearer SECRETX\r\nBad Header\r\n\r\n"))
		if status != 400 || bytes.Contains(body, []byte("SECRET")) {
			t.Errorf("GET %s with a bad header: %d %s; want 400 without the head", path, status, body)
		}
	}
}

// TestBareLFHeadsAreRefusedAtOnce: one rule for both parsers. A head whose lines end in a bare LF gets
// 400 as soon as it is whole, on API and stream paths alike; before, an API head waited for the 10 s
// head timeout (here 5 minutes, so a wait shows as the client's read deadline passing).
func TestBareLFHeadsAreRefusedAtOnce(t *testing.T) {
	srv := start(t, teststack.Config{HeadTimeout: 5 * time.Minute})
	for _, req := range []string{
		"POST /publish/t HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}",
		"GET /subscribe/t HTTP/1.1\nHost: x\n\n",
		"GET /admin/health HTTP/1.1\r\nHost: x\n\r\n",
	} {
		c, r := dialRaw(t, srv.addr, req)
		resp, err := http.ReadResponse(r, nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		if resp.StatusCode != 400 {
			t.Errorf("%q: %d; want 400", req, resp.StatusCode)
		}
	}
}

// TestAPIConnectionsPerAddressAreBounded: each idle keep-alive API connection holds a goroutine, so one
// address may hold only so many; the next is refused with 429 and closed.
func TestAPIConnectionsPerAddressAreBounded(t *testing.T) {
	srv := start(t, teststack.Config{MaxAPIConnsPerIP: 2})
	var held []net.Conn
	for range 2 {
		c, r := dialRaw(t, srv.addr, "GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
		defer c.Close()
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", len(held), resp, err)
		}
		held = append(held, c)
	}
	c, r := dialRaw(t, srv.addr, "GET /admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
	defer c.Close()
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("a third connection: %v %v; want 429", resp, err)
	}
	held[0].Close()
	// Once one is closed, its place is free again.
	for {
		c, r := dialRaw(t, srv.addr, "GET /admin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(r), nil)
		c.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if err != nil || resp.StatusCode != 429 {
			t.Fatalf("after a close: %v %v", resp, err)
		}
	}
}

// TestRedirectsAreRelative: no Location is built from the Host header.
func TestRedirectsAreRelative(t *testing.T) {
	srv := start(t, teststack.Config{})
	for _, path := range []string{"/admin", "/admin/health/", "/ADMIN/health"} {
		c, r := dialRaw(t, srv.addr, "GET "+path+" HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "evil") || (loc != "" && !strings.HasPrefix(loc, "/")) {
			t.Errorf("GET %s: Location %q", path, loc)
		}
	}
}

// TestMetricsNeedATokenOnceSecured: with both secrets set the node listens beyond loopback, so /metrics
// takes the admin token when no metrics token is set.
func TestMetricsNeedATokenOnceSecured(t *testing.T) {
	srv := start(t, teststack.Config{AdminAuth: auth.NewAdminAuth(adminToken), StreamAuth: auth.NewStreamAuth(tokenSecret)})
	if status, _ := call(t, "GET", srv.url+"/metrics", "", ""); status != 401 {
		t.Errorf("GET /metrics without a token: %d; want 401", status)
	}
	if status, _ := call(t, "GET", srv.url+"/metrics", adminToken, ""); status == 401 {
		t.Errorf("GET /metrics with the admin token: %d", status)
	}
}
