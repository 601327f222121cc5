package fanout

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// heapAfterGC is the live heap once garbage is collected.
func heapAfterGC() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestHistoryByteBudget: large events fill history up to the byte budget, not up to HistorySize, and a
// client resuming from an evicted one gets a reset naming the oldest event kept. Before the budget,
// 200 events of 1 MB held 200 MB until the TTL.
func TestHistoryByteBudget(t *testing.T) {
	const budget = 16 << 20
	base := heapAfterGC()
	h := NewHub(Config{HistoryMaxBytes: budget, MaxFrameBytes: 2 << 20})
	data := bytes.Repeat([]byte("x"), 1<<20)
	var ids []string
	for range 200 {
		id, _, err := h.Publish(t.Context(), "/big", Event{Data: data})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	st := h.budget.Stats()
	grew := heapAfterGC() - base
	t.Logf("after 200 x 1 MB: heap +%d MB, budget %+v", grew>>20, st)
	if st.Bytes > budget || st.Evicted < 180 {
		t.Fatalf("budget stats %+v; want at most %d bytes and most events evicted", st, budget)
	}
	if grew > budget+8<<20 {
		t.Fatalf("history holds %d MB of heap; want about the %d MB budget", grew>>20, budget>>20)
	}
	r := &recorder{}
	_, rep := h.Subscribe("/big", r, true, ids[0])
	if !rep.Reset || rep.Frames == 0 || rep.Frames > 16 || len(r.frames) != rep.Frames+1 {
		t.Fatalf("resume from an evicted event: %+v", rep)
	}
	reset := parseFrames(t, r.frames[0]) // the replayed frames are too long for the parser's lines
	if want := ids[len(ids)-rep.Frames]; reset[0].Type != "reset" || !strings.Contains(reset[0].Data, `"earliest_event_id":"`+want+`"`) {
		t.Fatalf("first frame %+v; want a reset naming the oldest kept event %s", reset[0], want)
	}
	if last := r.frames[len(r.frames)-1]; !bytes.HasPrefix(last, []byte("id: "+ids[len(ids)-1]+"\n")) {
		t.Fatalf("replay ends at %.40q; want the newest %s", last, ids[len(ids)-1])
	}
	runtime.KeepAlive(h)
}

// TestHistoryStreamBound: one small event on each of many topics keeps at most HistoryMaxStreams of
// them, the newest; the others are forgotten at once, not at the TTL. Before, 200,000 such topics held
// 132 MB until the TTL.
func TestHistoryStreamBound(t *testing.T) {
	const streams, topics = 1000, 20000
	base := heapAfterGC()
	h := NewHub(Config{HistoryMaxStreams: streams})
	data := bytes.Repeat([]byte("y"), 100)
	ids := make([]string, topics)
	for i := range topics {
		ids[i], _, _ = h.Publish(t.Context(), fmt.Sprintf("/t%d", i), Event{Data: data})
	}
	st := h.budget.Stats()
	grew := heapAfterGC() - base
	t.Logf("after %d topics: heap +%d KB, %d streams known, budget %+v", topics, grew>>10, h.Streams(), st)
	if st.Streams != streams || h.Streams() != streams {
		t.Fatalf("%d streams with history, %d known; want %d", st.Streams, h.Streams(), streams)
	}
	if grew > 2<<20 {
		t.Fatalf("history of %d streams holds %d KB of heap", streams, grew>>10)
	}
	// The newest topics kept their event, the oldest lost it and say so.
	r := &recorder{}
	if _, rep := h.Subscribe(fmt.Sprintf("/t%d", topics-1), r, true, "none"); rep.Frames != 1 {
		t.Fatalf("newest topic replayed %+v; want its event", rep)
	}
	r = &recorder{}
	if _, rep := h.Subscribe("/t0", r, true, ids[0]); !rep.Reset || rep.Frames != 0 {
		t.Fatalf("oldest topic resumed with %+v; want a reset and nothing", rep)
	}
	runtime.KeepAlive(h)
}

// TestHistoryEvictsOldestAcrossRoots: the budget takes the oldest frame whichever root holds it, out of
// the histories of its topic and of every ancestor at once, and a stream with subscribers stays known.
func TestHistoryEvictsOldestAcrossRoots(t *testing.T) {
	data := bytes.Repeat([]byte("z"), 1000)
	cost := frameCost(&Frame{Bytes: AppendFrame(nil, "1-1", "", data), ID: "1-1"})
	h := NewHub(Config{HistoryMaxBytes: 12*cost + 8*streamOverhead})
	live := &recorder{}
	h.Subscribe("/old", live, false, "")
	oldID, _, _ := h.Publish(t.Context(), "/old/deep/leaf", Event{Data: data})
	var newIDs []string
	for range 8 {
		id, _, _ := h.Publish(t.Context(), "/new", Event{Data: data})
		newIDs = append(newIDs, id)
	}
	if _, rep := h.Subscribe("/old/deep", &recorder{}, true, oldID); rep.Reset {
		t.Fatalf("/old evicted while the budget holds: %+v", h.budget.Stats())
	}
	for range 8 {
		id, _, _ := h.Publish(t.Context(), "/new", Event{Data: data})
		newIDs = append(newIDs, id)
	}
	for _, k := range []string{"/old", "/old/deep", "/old/deep/leaf"} {
		r := &recorder{}
		if _, rep := h.Subscribe(k, r, true, "x"); rep.Frames != 0 {
			t.Errorf("%s still replays %d frames after the budget took its oldest", k, rep.Frames)
		}
	}
	r := &recorder{}
	_, rep := h.Subscribe("/new", r, true, newIDs[len(newIDs)-4])
	if rep.Reset || rep.Frames != 3 {
		t.Fatalf("/new resumed with %+v; want its 3 newest events", rep)
	}
	if len(live.frames) != 1 {
		t.Fatalf("the live subscriber of /old got %d frames; want its 1", len(live.frames))
	}
	if _, n, _ := h.Publish(t.Context(), "/old", Event{Data: data}); n != 2 { // live, and the one resumed above
		t.Fatalf("a publish to /old after eviction reached %d subscribers; want 2", n)
	}
}

// TestBudgetAccounting publishes, overwrites, evicts and expires at random from several goroutines and
// checks the budget's counts match what the hubs hold, and fall to zero once everything has expired.
func TestBudgetAccounting(t *testing.T) {
	b := NewBudget(Config{HistoryMaxBytes: 64 << 10, HistoryMaxStreams: 40})
	hubs := []*Hub{
		NewHub(Config{HistorySize: 8, Budget: b, Shards: 4}),
		NewHub(Config{HistorySize: 8, Budget: b, Shards: 4}),
	}
	keys := []string{"/a", "/a/b", "/a/b/c", "/b", "/b/x", "c1", "c2"}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3000 {
				h := hubs[rng.IntN(len(hubs))]
				key := keys[rng.IntN(len(keys))]
				if rng.IntN(4) == 0 {
					key += fmt.Sprintf("/%d", rng.IntN(20)) // many short-lived streams
					if key[0] != '/' {
						key = key[:2] // flat keys have no children
					}
				}
				switch rng.IntN(10) {
				case 0:
					h.Sweep(time.Now().Add(-time.Minute)) // expires nothing, walks everything
				case 1:
					sc, _ := h.Subscribe(key, &countSub{}, true, "nope")
					h.Unsubscribe(sc)
				default:
					if _, _, err := h.Publish(t.Context(), key, Event{Data: bytes.Repeat([]byte("d"), rng.IntN(2000)+1)}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	bytes, streams := recount(hubs)
	t.Logf("budget %+v, recounted %d bytes in %d streams", st, bytes, streams)
	if st.Bytes != bytes || st.Streams != streams {
		t.Fatalf("budget counts %d bytes in %d streams; the hubs hold %d in %d", st.Bytes, st.Streams, bytes, streams)
	}
	if st.Bytes > 64<<10 || st.Streams > 40 || st.Evicted == 0 {
		t.Fatalf("budget %+v over its bounds or never evicted", st)
	}
	for _, h := range hubs {
		h.Sweep(time.Now().Add(time.Hour))
	}
	if st := b.Stats(); st.Bytes != 0 || st.Streams != 0 || b.head != nil || b.tail != nil {
		t.Fatalf("after everything expired: %+v, list %p %p", st, b.head, b.tail)
	}
	for _, h := range hubs {
		if n := h.Streams(); n != 0 {
			t.Fatalf("%d streams left after everything expired", n)
		}
	}
}

// recount adds up what the hubs' histories hold, as a Budget counts it.
func recount(hubs []*Hub) (bytes, streams int64) {
	seen := map[*Frame]bool{}
	for _, h := range hubs {
		for i := range h.shards {
			s := &h.shards[i]
			s.mu.Lock()
			for _, n := range s.nodes {
				if n.hist.len() > 0 {
					streams++
					bytes += n.hist.footprint()
				}
				for j := range n.hist.len() {
					if f := n.hist.at(j); !seen[f] {
						seen[f] = true
						bytes += frameCost(f)
					}
				}
			}
			s.mu.Unlock()
		}
	}
	return bytes, streams
}
