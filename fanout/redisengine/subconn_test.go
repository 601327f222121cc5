package redisengine_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/internal/testutil"
)

// TestPartitionConnectionsRenewed: 200 watched roots over 8 partitions cost no goroutine that stays (the
// partitions' connections are made at Start); after Redis kills every pub/sub connection each root is
// subscribed again and its stream gets what was published, once and in order.
func TestPartitionConnectionsRenewed(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		testutil.LeakCheck(t)
		a, b := newBusNode(t, addrs), newBusNode(t, addrs)
		const roots = 200
		waitFor(t, "the partitions' connections", func() bool {
			return a.eng.PubSubConnections() == 8 && b.eng.PubSubConnections() == 8
		})
		g0 := runtime.NumGoroutine()
		recs := make([]*recorder, roots)
		subs := make([]*fanout.Subscription, roots)
		for i := range roots {
			recs[i] = newRecorder()
			subs[i], _ = a.topics.Subscribe("/k"+strconv.Itoa(i), recs[i], false, "")
		}
		for i := range roots {
			if err := a.eng.Ready(t.Context(), "t", "/k"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
		grew := runtime.NumGoroutine() - g0
		t.Logf("%d watched roots: %d goroutines more", roots, grew)
		if grew > 4 { // a history read's goroutine may not have returned yet
			t.Errorf("%d watched roots cost %d goroutines; want none", roots, grew)
		}
		publish := func(i int) string {
			t.Helper()
			for range 100 { // 503 while the bus recovers
				id, _, err := b.topics.Publish(t.Context(), "/k"+strconv.Itoa(i), fanout.Event{Data: []byte("x")})
				if err == nil {
					return id
				}
			}
			t.Fatal("publish kept failing")
			return ""
		}
		want := make([][]string, roots)
		for i := range roots {
			want[i] = append(want[i], publish(i))
		}
		for _, addr := range addrs {
			killPubSub(t, addr)
		}
		for i := range roots {
			want[i] = append(want[i], publish(i))
		}
		for i := range roots {
			checkOnceInOrder(t, "/k"+strconv.Itoa(i), recs[i].wait(t, len(want[i])), want[i])
		}
		for _, s := range subs {
			a.topics.Unsubscribe(s)
		}
		waitFor(t, "the roots to be unsubscribed", func() bool { return a.eng.BusStats().Subscriptions == 0 })
	})
}

// killPubSub has the Redis at addr close every pub/sub connection.
func killPubSub(t *testing.T, addr string) {
	t.Helper()
	if _, err := redistest.Do(addr, "CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub at %s: %v", addr, err)
	}
}
