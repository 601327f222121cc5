package edge_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/teststack"
)

// TestEncodedPathsCannotSkipTheGuard is the regression test of the publish bypass: paths whose decoded,
// cleaned form is not an admin path while the router still routes them to an admin handler. Each must
// be refused before any handler runs, on fresh and keep-alive connections alike.
func TestEncodedPathsCannotSkipTheGuard(t *testing.T) {
	srv := securedServer(t)
	pets := openSSE(t, srv.url+"/subscribe/pets?token="+sign(t, tokenSecret, "u", []string{"/pets"}, time.Minute), nil)
	body := `{"event":"pwned","data":"x"}`
	for _, path := range []string{
		"/publish/pets/..%2f..%2fx",
		"/publish/pets/%2e%2e/%2e%2e/x",
		"/publish/pets/../../x",
		"/publish/pets/./x",
		"/publish/pets//x",
		"/publish/pets%2fdogs",
		"/publish/pets/%252e%252e",
		"/admin/functions/..%2f..%2f..%2fx",
		"/admin/connections/..%2f..%2fhealth",
		"/clients/alice%2f..%2f..%2fx/events",
		"/sse/a%2fb",
		"/subscribe/pets%00",
	} {
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, len(body), body)
		status, answer := rawRequest(t, srv.addr, []byte(req))
		var e struct{ Code string }
		_ = json.Unmarshal(answer, &e)
		if status != 400 || e.Code != "bad_path" {
			t.Errorf("POST %s without a token: %d %s; want 400 bad_path", path, status, answer)
		}
		// The edge's own head parser (GET /subscribe/…, /sse/…) follows the same rule.
		if status, answer := rawRequest(t, srv.addr, []byte("GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); status != 400 {
			t.Errorf("GET %s: %d %s; want 400", path, status, answer)
		}
	}
	// Events reach a stream in order: if the marker comes first, nothing above was published.
	if status, code := call(t, "POST", srv.url+"/publish/pets", adminToken, `{"event":"marker","data":"x"}`); status != 200 {
		t.Fatalf("publish: %d %s", status, code)
	}
	if ev := pets.next(t); ev.Type != "marker" {
		t.Fatalf("the /pets subscriber got %q before the marker", ev.Type)
	}
}

// TestPublishTopicsDecodeLikeSubscribeTopics: a percent-encoded topic names the same topic on both
// sides (before, /publish/caf%C3%A9 published to the literal "/caf%C3%A9").
func TestPublishTopicsDecodeLikeSubscribeTopics(t *testing.T) {
	srv := start(t, teststack.Config{AdminAuth: auth.NewAdminAuth(adminToken)})
	s := openSSE(t, srv.url+"/subscribe/caf%C3%A9", nil)
	defer s.Close()
	if status, code := call(t, "POST", srv.url+"/publish/caf%C3%A9", adminToken, `{"event":"menu","data":"x"}`); status != 200 {
		t.Fatalf("publish: %d %s", status, code)
	}
	if ev := s.next(t); ev.Type != "menu" {
		t.Fatalf("got %q, want the menu event", ev.Type)
	}
}
