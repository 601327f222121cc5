package redisengine_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
	"github.com/sseedge/sseedge/metrics"
)

// testLinger is the linger of the interest tests: long enough for a reconnect, short for a test.
const testLinger = 200 * time.Millisecond

// busNode is a node with a topic hub ("t") and a client hub ("c") on one engine.
type busNode struct {
	eng     *redisengine.Engine
	topics  *fanout.Hub
	clients *fanout.Hub
	client  rueidis.Client
	reg     *prometheus.Registry // the engine's metrics
}

func newBusNode(t *testing.T, addrs []string) *busNode {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng := redisengine.New(client, redisengine.Config{Partitions: 8, HistorySize: 1000, Linger: testLinger,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(reg)})
	n := &busNode{eng: eng, client: client, reg: reg,
		topics:  fanout.NewHub(fanout.Config{Engine: eng.Namespace("t")}),
		clients: fanout.NewHub(fanout.Config{Engine: eng.Namespace("c")})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { eng.Close(); client.Close() }) })
	return n
}

// waitFor polls cond, which reads state no event announces (a Redis subscription's end), until it
// holds or 10 s pass, and returns how long it took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(began)
}

// checkOnceInOrder checks that got is want exactly.
func checkOnceInOrder(t *testing.T, who string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s got %d events; want %d", who, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is %s; want %s", who, i, got[i], want[i])
		}
	}
}

// TestPersonalEventsReachOnlyTheirNode: 4 nodes, 400 client streams spread evenly, 4,000 personal
// events published through all nodes: each event reaches its client once and in order, and each node
// receives at most 1.1 times the events its own clients get (every node received all 4,000 before).
func TestPersonalEventsReachOnlyTheirNode(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		const nodes, clients, events = 4, 400, 4000
		ns := make([]*busNode, nodes)
		for i := range ns {
			ns[i] = newBusNode(t, addrs)
		}
		recs := make([]*recorder, clients)
		for c := range clients {
			recs[c] = newRecorder()
			ns[c%nodes].clients.Subscribe("client-"+strconv.Itoa(c), recs[c], false, "")
		}
		before := make([]uint64, nodes)
		for i, n := range ns {
			before[i] = n.eng.BusStats().Received
		}
		want := make([][]string, clients)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, n := range ns { // each node publishes a quarter, to every client in turn
			wg.Go(func() {
				for j := i; j < events; j += nodes {
					c := j % clients
					id := "e" + strconv.Itoa(j)
					if _, _, err := n.clients.Publish(t.Context(), "client-"+strconv.Itoa(c), fanout.Event{ID: id, Data: []byte(id)}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					want[c] = append(want[c], id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for c, r := range recs {
			// Publishes of one client come from several nodes at once: their order is the order Redis
			// ran them, which the recorder sees; check each came once and the set is complete.
			got := r.wait(t, len(want[c]))
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("client %d got %s twice", c, id)
				}
				seen[id] = true
			}
			for _, id := range want[c] {
				if !seen[id] {
					t.Fatalf("client %d missed %s", c, id)
				}
			}
		}
		for i, n := range ns {
			got := n.eng.BusStats().Received - before[i]
			delivered := events / nodes
			t.Logf("node %d: %d bus messages for %d delivered events (%.2f a delivered event)", i, got, delivered, float64(got)/float64(delivered))
			if float64(got) > 1.1*float64(delivered) {
				t.Errorf("node %d received %d bus messages for %d delivered events; want at most 1.1x", i, got, delivered)
			}
		}
	})
}

// TestPersonalEventsInOrder: one publisher's events to one client arrive in its order, once.
func TestPersonalEventsInOrder(t *testing.T) {
	addrs := []string{redistest.StartSingle(t).Addr()}
	a, b := newBusNode(t, addrs), newBusNode(t, addrs)
	r := newRecorder()
	b.clients.Subscribe("alice", r, false, "")
	var want []string
	for i := range 200 {
		id, _, err := a.clients.Publish(t.Context(), "alice", fanout.Event{Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	checkOnceInOrder(t, "alice", r.wait(t, len(want)), want)
	if got := a.eng.BusStats().Received; got != 0 {
		t.Errorf("node a, which holds no stream of alice, received %d bus messages", got)
	}
}

// TestNoSubscriberNoMessages: a node with no stream of a root receives none of its events, and a node
// whose last stream of it leaves stops receiving them within the linger plus a round trip.
func TestNoSubscriberNoMessages(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b := newBusNode(t, addrs), newBusNode(t, addrs)
		ra := newRecorder()
		sub, _ := a.topics.Subscribe("/pets/dogs", ra, false, "")
		// Events published before the subscription is confirmed reach node a from history, not the bus
		// (the partition's connection is made on its first root: a round trip or two).
		if err := a.eng.Ready(t.Context(), "t", "/pets"); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, _, err := b.topics.Publish(t.Context(), "/pets", fanout.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		// Node a hears all 50 (its stream's root): by then the bus has carried them to any node it would.
		waitFor(t, "node a to hear the events", func() bool { return a.eng.BusStats().Received >= 50 })
		if got := b.eng.BusStats().Received; got != 0 {
			t.Errorf("node b, without a stream of /pets, received %d bus messages", got)
		}
		// The stream of /pets/dogs gets none of /pets's own events, yet node a receives them: they are
		// its root's, which node a watches.
		a.topics.Unsubscribe(sub)
		took := waitFor(t, "node a to unsubscribe", func() bool { return a.eng.BusStats().Subscriptions == 0 })
		t.Logf("unsubscribed %v after the last stream left (linger %v)", took.Round(time.Millisecond), testLinger)
		if took < testLinger {
			t.Errorf("unsubscribed after %v, before the linger %v", took, testLinger)
		}
		if took > testLinger+250*time.Millisecond {
			t.Errorf("unsubscribed after %v; want within the linger %v plus a round trip", took, testLinger)
		}
		if held := counter(t, a.reg, "sseedge_bus_subscriptions"); held != 0 {
			t.Errorf("sseedge_bus_subscriptions is %v once the subscription is gone; want 0", held)
		}
		heard := a.eng.BusStats().Received
		for i := range 20 {
			if _, _, err := b.topics.Publish(t.Context(), "/pets", fanout.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		// A marker root that node a does watch: once its event is there, the bus (same Redis, same
		// connection) has carried whatever /pets sent before it.
		probe := newRecorder()
		a.topics.Subscribe("/marker", probe, false, "")
		if _, _, err := b.topics.Publish(t.Context(), "/marker", fanout.Event{Data: []byte("m")}); err != nil {
			t.Fatal(err)
		}
		probe.wait(t, 1)
		if got := a.eng.BusStats().Received - heard; got > 1 { // the marker's own
			t.Errorf("node a received %d bus messages of /pets after it unsubscribed", got-1)
		}
	})
}

// TestChurnBounded: streams reconnecting in a loop within the linger cost Redis no more subscribe
// commands than the roots they read, and a stream that stays loses nothing.
func TestChurnBounded(t *testing.T) {
	addrs := []string{redistest.StartSingle(t).Addr()}
	a, b := newBusNode(t, addrs), newBusNode(t, addrs)
	const streams, roots = 2000, 20
	stay := newRecorder()
	a.topics.Subscribe("/r0", stay, false, "")
	before := redistest.CommandCount(t, addrs[0], "ssubscribe")
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	cycles := make([]int, 8)
	for w := range 8 { // 8 workers each cycle 250 streams: open, then close
		wg.Go(func() {
			for time.Now().Before(stop) {
				var subs []*fanout.Subscription
				for s := w; s < streams; s += 8 {
					sc, _ := a.topics.Subscribe("/r"+strconv.Itoa(s%roots)+"/s"+strconv.Itoa(s), newRecorder(), false, "")
					subs = append(subs, sc)
				}
				for _, sc := range subs {
					a.topics.Unsubscribe(sc)
				}
				cycles[w]++
			}
		})
	}
	var want []string
	for time.Now().Before(stop) {
		id, _, err := b.topics.Publish(t.Context(), "/r0", fanout.Event{Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		time.Sleep(5 * time.Millisecond) // a publish rate, not a wait
	}
	wg.Wait()
	checkOnceInOrder(t, "the stream that stayed", stay.wait(t, len(want)), want)
	cmds := redistest.CommandCount(t, addrs[0], "ssubscribe") - before
	total := 0
	for _, c := range cycles {
		total += c * streams / 8
	}
	t.Logf("%d stream opens over %d roots cost %d SSUBSCRIBEs", total, roots, cmds)
	if cmds > roots {
		t.Errorf("%d SSUBSCRIBEs for %d roots; want at most one a root", cmds, roots)
	}
}

// TestSubscribeWhileRedisPaused: a root first watched while Redis is frozen gets its subscription once
// Redis is back, and the stream every event published from then on.
func TestSubscribeWhileRedisPaused(t *testing.T) {
	srv := redistest.StartSingle(t)
	addrs := []string{srv.Addr()}
	a, b := newBusNode(t, addrs), newBusNode(t, addrs)
	srv.Pause()
	r := newRecorder()
	b.topics.Subscribe("/paused", r, false, "")
	time.Sleep(1500 * time.Millisecond) // the pause itself: what is tested is what follows it
	srv.Resume()
	var want []string
	for i := range 5 {
		var id string
		var err error
		for attempt := 0; attempt < 100; attempt++ { // publishes answer 503 until the client is back
			if id, _, err = a.topics.Publish(t.Context(), "/paused", fanout.Event{Data: []byte(strconv.Itoa(i))}); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	checkOnceInOrder(t, "the stream opened during the pause", r.wait(t, len(want)), want)
}

// TestClientMovesBetweenNodes: a client gets an event on node A, A dies, the next event is published,
// and the client reconnects to node B with its Last-Event-ID: it gets both events, once each.
func TestClientMovesBetweenNodes(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		pub, a, b := newBusNode(t, addrs), newBusNode(t, addrs), newBusNode(t, addrs)
		ra := newRecorder()
		a.clients.Subscribe("bob", ra, false, "")
		first, _, err := pub.clients.Publish(t.Context(), "bob", fanout.Event{Data: []byte("1")})
		if err != nil {
			t.Fatal(err)
		}
		got := ra.wait(t, 1)
		a.eng.Close() // node A dies
		second, _, err := pub.clients.Publish(t.Context(), "bob", fanout.Event{Data: []byte("2")})
		if err != nil {
			t.Fatal(err)
		}
		rb := newRecorder()
		b.clients.Subscribe("bob", rb, true, got[len(got)-1])
		third, _, err := pub.clients.Publish(t.Context(), "bob", fanout.Event{Data: []byte("3")})
		if err != nil {
			t.Fatal(err)
		}
		all := append(got, rb.wait(t, 2)...)
		checkOnceInOrder(t, "bob", all, []string{first, second, third})
	})
}
