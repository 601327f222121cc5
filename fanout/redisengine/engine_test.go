package redisengine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
)

// node is one edge node's share of the engine: its own Redis client, engine and hub.
type node struct {
	eng *redisengine.Engine
	hub *fanout.Hub
}

// testPartitions is the partition count of newNode's engines.
const testPartitions = 8

func newNode(t *testing.T, addrs []string) *node {
	t.Helper()
	return newNodeWith(t, addrs, nil)
}

// newNodeWith is newNode with pubsub making the partitions' pub/sub connections (nil: the node's
// client); the node closes it.
func newNodeWith(t *testing.T, addrs []string, pubsub rueidis.Client) *node {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if pubsub != nil {
		t.Cleanup(pubsub.Close) // after the engine's Close, registered below
	}
	eng := redisengine.New(client, redisengine.Config{Partitions: testPartitions, HistorySize: 100, PubSub: pubsub,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hub := fanout.NewHub(fanout.Config{Engine: eng.Namespace("t")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); client.Close() })
	return &node{eng: eng, hub: hub}
}

// recorder keeps the frames a subscriber gets and signals each one.
type recorder struct {
	mu  sync.Mutex
	ids []string
	got chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 100000)} }

func (r *recorder) Send(f *fanout.Frame) {
	r.mu.Lock()
	r.ids = append(r.ids, f.ID)
	r.mu.Unlock()
	r.got <- struct{}{}
}

// wait blocks until n frames arrived.
func (r *recorder) wait(t *testing.T, n int) []string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		if len(r.ids) >= n {
			ids := append([]string(nil), r.ids...)
			r.mu.Unlock()
			return ids
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-timeout:
			t.Fatalf("timed out: %d of %d frames", len(r.ids), n)
		}
	}
}

func eachRedis(t *testing.T, fn func(t *testing.T, addrs []string)) {
	t.Run("single", func(t *testing.T) { fn(t, []string{redistest.StartSingle(t).Addr()}) })
	t.Run("cluster", func(t *testing.T) { fn(t, redistest.StartCluster(t, 3).Addrs()) })
}

// TestThreeNodesExactlyOnceInOrder publishes from every node and checks each subscriber on every node
// gets every event once, all in one order.
func TestThreeNodesExactlyOnceInOrder(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		nodes := []*node{newNode(t, addrs), newNode(t, addrs), newNode(t, addrs)}
		var recs []*recorder
		for _, n := range nodes {
			for _, topic := range []string{"/pets", "/pets/dogs"} {
				r := newRecorder()
				n.hub.Subscribe(topic, r, false, "")
				recs = append(recs, r)
			}
		}
		const events = 90
		var wg sync.WaitGroup
		for i, n := range nodes { // three publishers at once
			wg.Go(func() {
				for j := range events / 3 {
					if _, _, err := n.hub.Publish(t.Context(), "/pets/dogs", fanout.Event{Data: []byte(fmt.Sprintf("%d-%d", i, j))}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		first := recs[0].wait(t, events)
		for i, r := range recs {
			ids := r.wait(t, events)
			if len(ids) != events {
				t.Fatalf("subscriber %d got %d events; want %d", i, len(ids), events)
			}
			for j := range ids {
				if ids[j] != first[j] {
					t.Fatalf("subscriber %d: event %d is %s; subscriber 0 has %s", i, j, ids[j], first[j])
				}
			}
		}
		seen := map[string]bool{}
		for _, id := range first {
			if seen[id] {
				t.Fatalf("event %s delivered twice", id)
			}
			seen[id] = true
		}
	})
}

// TestResumeOnAnotherNode publishes through node A while a client is away and resumes it on node B.
func TestResumeOnAnotherNode(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b := newNode(t, addrs), newNode(t, addrs)
		last, _, err := a.hub.Publish(t.Context(), "/feed/x", fanout.Event{Data: []byte("seen")})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range 50 {
			id, _, err := a.hub.Publish(t.Context(), "/feed/x", fanout.Event{Data: []byte(strconv.Itoa(i))})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		r := newRecorder()
		_, rep := b.hub.Subscribe("/feed", r, true, last)
		if rep.Reset || rep.Frames != 50 {
			t.Fatalf("replay %+v; want 50 frames, no reset", rep)
		}
		live, _, _ := a.hub.Publish(t.Context(), "/feed/x", fanout.Event{Data: []byte("live")})
		got := r.wait(t, 51)
		for i, id := range append(want, live) {
			if got[i] != id {
				t.Fatalf("frame %d is %s; want %s", i, got[i], id)
			}
		}
		// A publisher's own IDs resume too; an unknown ID resets.
		a.hub.Publish(t.Context(), "/feed/x", fanout.Event{ID: "custom-1", Data: []byte("c1")})
		a.hub.Publish(t.Context(), "/feed/x", fanout.Event{ID: "custom-2", Data: []byte("c2")})
		r2 := newRecorder()
		if _, rep := b.hub.Subscribe("/feed/x", r2, true, "custom-1"); rep.Reset || rep.Frames != 1 {
			t.Fatalf("resume from a custom ID: %+v", rep)
		}
		if got := r2.wait(t, 1); got[0] != "custom-2" {
			t.Fatalf("resumed with %v", got)
		}
		if _, rep := b.hub.Subscribe("/feed/x", newRecorder(), true, "0-1"); !rep.Reset {
			t.Fatal("an ID that was never retained did not reset")
		}
	})
}

// TestRedisRestart checks publishes fail fast while Redis is away and work again once it is back, with
// deliveries resuming on the renewed subscriptions.
func TestRedisRestart(t *testing.T) {
	srv := redistest.StartSingle(t)
	a, b := newNode(t, []string{srv.Addr()}), newNode(t, []string{srv.Addr()})
	r := newRecorder()
	b.hub.Subscribe("/r", r, false, "")
	if _, _, err := a.hub.Publish(t.Context(), "/r", fanout.Event{Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)

	srv.Stop()
	began := time.Now()
	_, _, err := a.hub.Publish(t.Context(), "/r", fanout.Event{Data: []byte("during")})
	if !errors.Is(err, fanout.ErrUnavailable) || time.Since(began) > 3*time.Second {
		t.Fatalf("publish while Redis is down: %v after %v; want ErrUnavailable, fast", err, time.Since(began))
	}
	if b.eng.Ping(context.Background()) == nil {
		t.Fatal("ping succeeded with Redis down")
	}

	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for n := 2; ; n++ { // keep publishing until one arrives: the subscription renews itself
		if _, _, err := a.hub.Publish(t.Context(), "/r", fanout.Event{Data: []byte("after")}); err == nil {
			select {
			case <-r.got:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("deliveries did not resume after Redis came back")
		}
	}
}

// TestGapFilledFromHistory: an event that reached a root's history but not the bus (what a node misses
// while its subscription is being renewed) is delivered from history, in order and to the subscribers
// of its own key only, when the root's next event shows the gap.
func TestGapFilledFromHistory(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b := newNode(t, addrs), newNode(t, addrs)
		pets, dogs := newRecorder(), newRecorder()
		a.hub.Subscribe("/pets", pets, false, "")
		b.hub.Subscribe("/pets/dogs", dogs, false, "")
		first, _, err := a.hub.Publish(t.Context(), "/pets/dogs", fanout.Event{Data: []byte("one")})
		if err != nil {
			t.Fatal(err)
		}
		pets.wait(t, 1)
		dogs.wait(t, 1)

		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		missed := map[string]string{}
		for _, key := range []string{"/pets/cats", "/pets/dogs"} {
			id, err := client.Do(t.Context(), client.B().Xadd().Key(a.eng.HistoryKey("t", fanout.Root("/pets/dogs"))).Id("*").
				FieldValue().FieldValue("k", key).FieldValue("e", "").FieldValue("u", "").FieldValue("d", "missed").Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			missed[key] = id
		}
		last, _, err := b.hub.Publish(t.Context(), "/pets/dogs", fanout.Event{Data: []byte("three")})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{first, missed["/pets/cats"], missed["/pets/dogs"], last}
		if got := pets.wait(t, 4); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("subscriber of /pets got %v; want %v", got, want)
		}
		want = []string{first, missed["/pets/dogs"], last}
		if got := dogs.wait(t, 3); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("subscriber of /pets/dogs got %v; want %v", got, want)
		}
		if gaps := a.eng.BusStats().Gaps + b.eng.BusStats().Gaps; gaps != 2 {
			t.Errorf("the nodes filled %d gaps; want 2, one each", gaps)
		}
	})
}

// TestQuietRootCaughtUpAfterRenewal: an event that reached a root's history while the node's
// subscription was down is delivered once the subscription is renewed, even though the root has no
// later event to show the gap.
func TestQuietRootCaughtUpAfterRenewal(t *testing.T) {
	addrs := []string{redistest.StartSingle(t).Addr()}
	a := newNode(t, addrs)
	rec := newRecorder()
	a.hub.Subscribe("/quiet", rec, false, "")
	first, _, err := a.hub.Publish(t.Context(), "/quiet", fanout.Event{Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)

	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	missed, err := client.Do(t.Context(), client.B().Xadd().Key(a.eng.HistoryKey("t", "/quiet")).Id("*").
		FieldValue().FieldValue("k", "/quiet").FieldValue("e", "").FieldValue("u", "").FieldValue("d", "missed").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	// Drop the node's subscriptions: it renews them, then looks at its roots' histories.
	if err := client.Do(t.Context(), client.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.wait(t, 2), []string{first, missed}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

// TestCursorsOnlyForWatchedRoots: every node hears every root on the bus, but keeps a gap cursor only
// for the roots it holds subscriptions to.
func TestCursorsOnlyForWatchedRoots(t *testing.T) {
	addrs := []string{redistest.StartSingle(t).Addr()}
	a, b := newNode(t, addrs), newNode(t, addrs)
	rec := newRecorder()
	a.hub.Subscribe("/watched/x", rec, false, "")
	// Roots on the watched root's partition: the bus delivers a partition in order, so once the watched
	// event arrives, node a has heard these too.
	partition := func(root string) string {
		k := a.eng.HistoryKey("t", root)
		return k[strings.Index(k, "{"):strings.Index(k, "}")]
	}
	var others []string
	for i := 0; len(others) < 5 && i < 1000; i++ {
		if root := fmt.Sprintf("/other-%d", i); partition(root) == partition("/watched") {
			others = append(others, root)
		}
	}
	if len(others) < 5 {
		t.Fatalf("found %d roots on the watched root's partition", len(others))
	}
	for _, root := range append(others, "/watched") {
		if _, _, err := b.hub.Publish(t.Context(), root+"/x", fanout.Event{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, 1)
	if n := a.eng.Cursors(); n != 1 {
		t.Fatalf("node a keeps %d cursors; want 1 (the root it watches)", n)
	}
	if n := b.eng.Cursors(); n != 0 {
		t.Fatalf("node b, which watches nothing, keeps %d cursors", n)
	}
}
