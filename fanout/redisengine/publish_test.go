package redisengine_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/fanout/redisengine"
	"github.com/sseedge/sseedge/internal/redistest"
)

// TestPublishRefusedAfterDeadline: Redis frozen (SIGSTOP) past a publish's deadline but not past the
// node's grace runs the publish when it wakes and refuses it; the node gets that answer, answers
// not applied (ErrUnavailable without ErrOutcomeUnknown), counts it, and history has no such event.
func TestPublishRefusedAfterDeadline(t *testing.T) {
	r := redistest.StartSingle(t)
	n, reg, _ := resumeNode(t, r.Addr(), redisengine.Config{Timeout: 300 * time.Millisecond, PublishGrace: 3 * time.Second})
	ids := publishIDs(t, n, "/late", 1) // also bounds the partition's clock
	r.Pause()
	done := make(chan error, 1)
	go func() {
		_, _, err := n.hub.Publish(t.Context(), "/late", fanout.Event{Data: []byte("late")})
		done <- err
	}()
	time.Sleep(time.Second) // frozen past the 300 ms deadline, well within the 3 s grace
	r.Resume()
	err := <-done
	if !errors.Is(err, fanout.ErrUnavailable) || errors.Is(err, fanout.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "after its deadline") {
		t.Fatalf("publish to a Redis frozen past its deadline: %v; want ErrUnavailable, refused after the deadline, outcome known", err)
	}
	if v := counter(t, reg, "sseedge_publish_expired_total"); v != 1 {
		t.Fatalf("sseedge_publish_expired_total = %v; want 1", v)
	}
	f := &frames{}
	if _, rep := n.hub.Subscribe("/late", f, true, ids[0]); rep.Reset || rep.Frames != 0 {
		t.Fatalf("history after the refused publish: %+v; want nothing after the first event", rep)
	}
}

// TestPublishOutcomeUnknownWhenConnectionLost: a publish in flight when Redis dies (frozen, then
// SIGKILLed, so it never ran) cannot be told from one that ran before its answer was lost: the error says
// the outcome is unknown, and is counted. With Redis gone, the next publish is refused before anything
// is sent: not applied.
func TestPublishOutcomeUnknownWhenConnectionLost(t *testing.T) {
	r := redistest.StartSingle(t)
	n, reg, _ := resumeNode(t, r.Addr(), redisengine.Config{Timeout: 2 * time.Second})
	publishIDs(t, n, "/lost", 1)
	r.Pause()
	done := make(chan error, 1)
	go func() {
		_, _, err := n.hub.Publish(t.Context(), "/lost", fanout.Event{Data: []byte("in flight")})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the publish is on the wire; it has no event to wait on
	r.Kill()
	err := <-done
	if !errors.Is(err, fanout.ErrUnavailable) || !errors.Is(err, fanout.ErrOutcomeUnknown) {
		t.Fatalf("publish whose connection was lost in flight: %v; want ErrUnavailable and ErrOutcomeUnknown", err)
	}
	if v := counter(t, reg, "sseedge_publish_outcome_unknown_total"); v != 1 {
		t.Fatalf("sseedge_publish_outcome_unknown_total = %v; want 1", v)
	}
	// Once the client has seen its connections drop, a publish with Redis gone is refused as not
	// applied. A pooled connection it has not yet seen close may still take one write and answer EOF:
	// that outcome is honestly unknown, so try again (bounded) until the client knows.
	for try := 0; ; try++ {
		_, _, err = n.hub.Publish(t.Context(), "/lost", fanout.Event{Data: []byte("refused")})
		if !errors.Is(err, fanout.ErrOutcomeUnknown) || try == 20 {
			break
		}
	}
	if !errors.Is(err, fanout.ErrUnavailable) || errors.Is(err, fanout.ErrOutcomeUnknown) {
		t.Fatalf("publish with Redis gone: %v; want ErrUnavailable, not applied", err)
	}
}

// subscribedPair starts two nodes, a and b, with a subscriber of topic on b whose bus subscription is
// made.
func subscribedPair(t *testing.T, addrs []string, topic string) (a, b *node, rec *recorder) {
	t.Helper()
	a, b, rec = newNode(t, addrs), newNode(t, addrs), newRecorder()
	b.hub.Subscribe(topic, rec, false, "")
	if err := b.eng.Ready(t.Context(), "t", fanout.Root(topic)); err != nil {
		t.Fatal(err)
	}
	return a, b, rec
}

// TestIdempotencyKeyAcrossNodes: an event published with an idempotency key on one node is not
// published again by a retry on another node (which answers the first ID, the publisher's own when it
// gave one); the key with another event is refused; subscribers get the event once.
func TestIdempotencyKeyAcrossNodes(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b, rec := subscribedPair(t, addrs, "/orders")
		ev := fanout.Event{Data: []byte("paid"), IdempotencyKey: "order-7"}
		first, _, err := a.hub.Publish(t.Context(), "/orders/7", ev)
		if err != nil {
			t.Fatal(err)
		}
		again, delivered, err := b.hub.Publish(t.Context(), "/orders/7", ev)
		if err != nil || again != first || delivered != fanout.Replayed {
			t.Fatalf("retry on another node: %s %d %v; want %s, Replayed", again, delivered, err, first)
		}
		other := ev
		other.Data = []byte("refunded")
		if _, _, err := b.hub.Publish(t.Context(), "/orders/7", other); !errors.Is(err, fanout.ErrIdempotencyConflict) {
			t.Fatalf("the key with another event: %v; want ErrIdempotencyConflict", err)
		}
		own := fanout.Event{ID: "evt-1", Data: []byte("shipped"), IdempotencyKey: "order-7-shipped"}
		if id, _, err := a.hub.Publish(t.Context(), "/orders/7", own); err != nil || id != "evt-1" {
			t.Fatalf("publish with its own ID: %s %v", id, err)
		}
		if id, delivered, err := b.hub.Publish(t.Context(), "/orders/7", own); err != nil || id != "evt-1" || delivered != fanout.Replayed {
			t.Fatalf("retry of a publish with its own ID: %s %d %v; want evt-1, Replayed", id, delivered, err)
		}
		if _, _, err := a.hub.Publish(t.Context(), "/orders/7", fanout.Event{Data: []byte("marker")}); err != nil {
			t.Fatal(err)
		}
		got := rec.wait(t, 3)
		if len(got) != 3 || got[0] != first || got[1] != "evt-1" {
			t.Fatalf("the subscriber got %v; want %s, evt-1 and the marker, once each", got, first)
		}
	})
}

// TestPublishBatch: a batch to several roots is published in one pipelined round trip; each item gets
// its ID, the subscribers on another node get every event once, in each root's batch order, and an
// invalid item fails alone.
func TestPublishBatch(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b := newNode(t, addrs), newNode(t, addrs)
		roots := []string{"/a", "/b", "/c", "/d"}
		recs := map[string]*recorder{}
		for _, r := range roots {
			recs[r] = newRecorder()
			b.hub.Subscribe(r, recs[r], false, "")
			if err := b.eng.Ready(t.Context(), "t", r); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range roots { // so that every event of the batch has a predecessor to name
			if _, _, err := a.hub.Publish(t.Context(), r, fanout.Event{Data: []byte("first")}); err != nil {
				t.Fatal(err)
			}
			recs[r].wait(t, 1)
		}
		var items []fanout.BatchItem
		for i := range 400 {
			items = append(items, fanout.BatchItem{Key: roots[i%len(roots)] + "/x", Event: fanout.Event{Data: []byte(strconv.Itoa(i))}})
		}
		items = append(items, fanout.BatchItem{Key: "/a", Event: fanout.Event{Name: "bad\nname", Data: []byte("x")}})
		res := a.hub.PublishBatch(t.Context(), items)
		want := map[string][]string{}
		for i, r := range res[:400] {
			if r.Err != nil || r.ID == "" {
				t.Fatalf("item %d: %+v", i, r)
			}
			want[roots[i%len(roots)]] = append(want[roots[i%len(roots)]], r.ID)
		}
		if res[400].Err == nil {
			t.Fatal("the item with a bad event name was published")
		}
		for _, r := range roots {
			got := recs[r].wait(t, 1+len(want[r]))[1:]
			if len(got) != len(want[r]) {
				t.Fatalf("%s: %d events; want %d", r, len(got), len(want[r]))
			}
			for i := range got {
				if got[i] != want[r][i] {
					t.Fatalf("%s: event %d is %s; want %s", r, i, got[i], want[r][i])
				}
			}
		}
		if gaps := b.eng.BusStats().Gaps; gaps != 0 {
			t.Fatalf("node b read history to fill %d gaps; want none: each event names its predecessor", gaps)
		}
	})
}

// TestPublishBatchIdempotency: within one root's run of a batch, an item whose idempotency key an
// earlier item (or an earlier batch) used is answered with that item's ID and not applied again, one
// whose key was used for another event is refused, and the other items are applied around them, in
// order, once each.
func TestPublishBatchIdempotency(t *testing.T) {
	eachRedis(t, func(t *testing.T, addrs []string) {
		a, b, rec := subscribedPair(t, addrs, "/orders")
		shipped := fanout.Event{Data: []byte("shipped"), IdempotencyKey: "order-7"}
		items := []fanout.BatchItem{
			{Key: "/orders/7", Event: fanout.Event{Data: []byte("created")}},
			{Key: "/orders/7", Event: shipped},
			{Key: "/orders/7", Event: shipped},
			{Key: "/orders/7", Event: fanout.Event{Data: []byte("cancelled"), IdempotencyKey: "order-7"}},
			{Key: "/orders/8", Event: fanout.Event{Data: []byte("created")}},
		}
		res := a.hub.PublishBatch(t.Context(), items)
		for _, i := range []int{0, 1, 4} {
			if res[i].Err != nil || res[i].ID == "" || res[i].Delivered == fanout.Replayed {
				t.Fatalf("item %d: %+v; want applied", i, res[i])
			}
		}
		if res[2].Err != nil || res[2].ID != res[1].ID || res[2].Delivered != fanout.Replayed {
			t.Fatalf("item 2 (the key again, same event): %+v; want %s, Replayed", res[2], res[1].ID)
		}
		if !errors.Is(res[3].Err, fanout.ErrIdempotencyConflict) {
			t.Fatalf("item 3 (the key again, another event): %+v; want ErrIdempotencyConflict", res[3])
		}
		again := a.hub.PublishBatch(t.Context(), []fanout.BatchItem{{Key: "/orders/7", Event: shipped}})
		if again[0].Err != nil || again[0].ID != res[1].ID || again[0].Delivered != fanout.Replayed {
			t.Fatalf("the key in a later batch: %+v; want %s, Replayed", again[0], res[1].ID)
		}
		marker, _, err := a.hub.Publish(t.Context(), "/orders/9", fanout.Event{Data: []byte("marker")})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{res[0].ID, res[1].ID, res[4].ID, marker}
		if got := rec.wait(t, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("the subscriber got %v; want %v, once each", got, want)
		}
		if gaps := b.eng.BusStats().Gaps; gaps != 0 {
			t.Fatalf("node b read history to fill %d gaps; want none", gaps)
		}
	})
}
