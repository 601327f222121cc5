package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/sseedge/sseedge/auth"
)

// TestTokenRefreshAcrossNodes: a refresh posted to any node reaches the client's stream on the node
// that holds it, through Redis, while a stream nobody refreshes ends at its token's deadline (exp plus
// the 5 s leeway) with token_expired.
func TestTokenRefreshAcrossNodes(t *testing.T) {
	eachRedis(t, func(t *testing.T, r redisUnderTest) {
		secret := []byte("refresh-secret")
		env := []string{"REDIS_ADDR=" + r.addr, "TOKEN_SECRET=" + string(secret), "HEARTBEAT_INTERVAL=15s"}
		a, b := startNode(t, "node-a", env...), startNode(t, "node-b", env...)
		tok := func(sub string, ttl time.Duration) string {
			s, err := auth.Sign(secret, sub, nil, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		signed := time.Now()
		alice := subscribe(t, a.url+"/sse/alice?token="+tok("alice", time.Second), "")
		defer alice.Close()
		bob := subscribe(t, a.url+"/sse/bob?token="+tok("bob", time.Second), "")
		defer bob.Close()
		for _, s := range []*subscriber{alice, bob} {
			if ev, ok := s.next(t); !ok || ev.Type != "connected" {
				t.Fatalf("first event %+v", ev)
			}
		}

		req, _ := http.NewRequest(http.MethodPost, b.url+"/sse/alice/token", nil)
		req.Header.Set("Authorization", "Bearer "+tok("alice", time.Hour))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh on the other node: %d", resp.StatusCode)
		}

		if ev, ok := bob.next(t); !ok || ev.Type != "token_expired" {
			t.Fatalf("bob's stream: %+v, %v; want token_expired", ev, ok)
		}
		t.Logf("the unrefreshed stream ended %v after its token was signed (ttl 1s, leeway 5s)", time.Since(signed).Round(100*time.Millisecond))
		if _, ok := bob.next(t); ok {
			t.Fatal("bob's stream goes on after token_expired")
		}
		time.Sleep(time.Until(signed.Add(8 * time.Second)))
		if code, out := request(t, "POST", b.url+"/clients/alice/events", `{"event":"hello","data":"still here"}`); code != 200 {
			t.Fatalf("client event: %d %v", code, out)
		}
		if ev, ok := alice.next(t); !ok || ev.Type != "hello" {
			t.Fatalf("alice's refreshed stream after the first token's deadline: %+v, %v; want the event", ev, ok)
		}
	})
}
