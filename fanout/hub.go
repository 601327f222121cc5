// Package fanout delivers events to the subscribers of streams: hierarchical topics ("/pets" receives
// "/pets/dogs") and flat keys such as client IDs. Each event is encoded once into a Frame whose bytes
// every subscriber shares; a bounded history per stream lets a client resume from its Last-Event-ID.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Subscriber receives the frames of one stream. Send is called with the stream's shard locked, in the
// order the frames were published, so it must only queue the bytes (never write, block or unsubscribe).
type Subscriber interface {
	Send(f *Frame)
}

// Config sizes a Hub. The zero value gives the defaults of DESIGN.md.
type Config struct {
	HistorySize int           // frames kept per stream for resume; default 1000, negative keeps none
	HistoryTTL  time.Duration // how long a frame stays resumable; default 5m
	// HistoryMaxBytes and HistoryMaxStreams bound the hub's own history as a whole (see Budget): default
	// DefaultHistoryMaxBytes and DefaultHistoryMaxStreams, negative for no bound.
	HistoryMaxBytes   int64
	HistoryMaxStreams int
	Budget            *Budget // shares those bounds between hubs (a node's topics and clients); nil: the hub's own
	// MaxFrameBytes bounds an event's frame (its data grows by a prefix per line); a larger one is refused
	// with ErrFrameTooLarge before it is kept or sent. Default DefaultMaxFrameBytes, negative for no bound.
	MaxFrameBytes int
	Shards        int    // lock shards; default 64
	Engine        Engine // shared history and cross-node delivery; nil keeps both in this process
	// IDs generates the IDs of events published without one. Hubs that share it (a node's topics and
	// clients) number their events in one sequence, so replays merged across them (a multi-topic stream
	// reading both) come in publish order. Nil: the hub's own.
	IDs *IDs
}

// IDs generates event IDs "<start-ms>-<seq>": increasing in publish order, unique across restarts.
type IDs struct {
	prefix string
	seq    atomic.Uint64
}

// NewIDs returns a generator whose IDs start after now.
func NewIDs() *IDs { return &IDs{prefix: strconv.FormatInt(time.Now().UnixMilli(), 10) + "-"} }

// Next returns the next ID.
func (g *IDs) Next() string { return g.prefix + strconv.FormatUint(g.seq.Add(1), 10) }

func (c Config) withDefaults() Config {
	if c.HistorySize == 0 {
		c.HistorySize = 1000
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = 5 * time.Minute
	}
	if c.Shards <= 0 {
		c.Shards = 64
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	return c
}

// Hub is the set of streams of one kind on this node. Keys are canonical topics (see ParseTopic), whose
// events also go to every ancestor, or flat keys without a slash (client IDs), which have no ancestors.
type Hub struct {
	cfg    Config
	budget *Budget
	shards []shard
	ids    *IDs
	idem   idempotency // the idempotency keys seen, without an engine (which keeps its own)
}

type shard struct {
	mu    sync.Mutex
	nodes map[string]*node
}

// node is one stream: its live subscribers and its history. The node of a root also counts the
// subscriptions to any stream under it (watchers), so an engine can ask whether this node holds any.
type node struct {
	subs     []*Subscription
	hist     history
	watchers int32
	rootKey  string // a root's own key, set for an Interested engine (see watch)
}

// Subscription is one subscriber's place in a stream; Unsubscribe removes it.
type Subscription struct {
	shard *shard
	node  *node
	root  *node // the node of node's root, whose watchers count this subscription
	sub   Subscriber
	slot  int      // index in node.subs, -1 once removed
	held  *holding // while an engine's history is read: live frames held back until the replay is sent
	// replayed holds the IDs just replayed from an engine's history: their live copies may still be on
	// the way (the bus is slower than a history read) and are dropped. The first newer frame ends it,
	// since the bus delivers in history order.
	replayed map[string]struct{}
	resumed  bool // opened with a Last-Event-ID against an engine: its own history read covers its start
}

// Replay says what Subscribe sent before live events.
type Replay struct {
	Frames int    // history frames replayed
	Reset  bool   // a reset event was sent: events after the Last-Event-ID may be lost
	Reason string // the reset's reason: ResetNotRetained or ResetHistoryUnavailable
}

// NewHub returns an empty hub. Generated event IDs are "<start-ms>-<seq>", unique across restarts.
func NewHub(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, budget: cfg.Budget, shards: make([]shard, cfg.Shards)}
	if h.budget == nil {
		h.budget = NewBudget(cfg)
	}
	for i := range h.shards {
		h.shards[i].nodes = make(map[string]*node)
	}
	if h.ids = cfg.IDs; h.ids == nil {
		h.ids = NewIDs()
	}
	if cfg.Engine != nil {
		cfg.Engine.Attach(local{h})
	}
	return h
}

// Event is what a publisher sends: an optional ID (generated when empty), an optional name (default
// "message") and the data, which may span lines.
type Event struct {
	ID   string
	Name string
	Data []byte
	// IdempotencyKey, when set, makes a retry of the publish within the window answer with the first
	// one's ID instead of publishing again (see idempotency.go).
	IdempotencyKey string
}

// Publish encodes ev once, keeps it in the history of key and of each ancestor, and queues it to their
// subscribers. It returns the event's ID and how many subscribers it was queued to. With an engine the
// event goes through it to every node (this one included), and delivered is -1: it is not known here.
// ctx bounds the engine's call and carries the publisher's trace to it. An event whose idempotency key
// was seen within the window is not published again: the first one's ID comes back, with Replayed.
func (h *Hub) Publish(ctx context.Context, key string, ev Event) (id string, delivered int, err error) {
	if err := ValidateIdempotencyKey(ev.IdempotencyKey); err != nil {
		return "", 0, err
	}
	if h.cfg.Engine == nil {
		if ev.IdempotencyKey != "" {
			return h.publishOnce(key, ev)
		}
		return h.PublishLocal(key, ev)
	}
	if err := h.validateEvent(ev); err != nil {
		return "", 0, err
	}
	id, err = h.cfg.Engine.Publish(ctx, key, ev)
	if errors.Is(err, ErrReplayed) {
		return id, Replayed, nil
	}
	return id, -1, err
}

// validateEvent checks the fields of an event that go into its frame as they are, and the frame's size.
func (h *Hub) validateEvent(ev Event) error {
	if err := ValidateField("event", ev.Name, MaxEventNameLen); err != nil {
		return err
	}
	if err := ValidateField("id", ev.ID, MaxEventIDLen); err != nil {
		return err
	}
	id := ev.ID
	if id == "" {
		id = generatedIDBound
	}
	if n := FrameLen(id, ev.Name, ev.Data); h.cfg.MaxFrameBytes > 0 && n > h.cfg.MaxFrameBytes {
		return fmt.Errorf("%w: %d bytes framed, over %d", ErrFrameTooLarge, n, h.cfg.MaxFrameBytes)
	}
	return nil
}

// PublishLocal is Publish on this node only, whatever the engine: for streams that describe this node
// (its status page). The history it keeps is this node's.
func (h *Hub) PublishLocal(key string, ev Event) (id string, delivered int, err error) {
	if err := h.validateEvent(ev); err != nil {
		return "", 0, err
	}
	id = ev.ID
	if id == "" {
		id = h.ids.Next()
	}
	// Sized exactly: a frame kept in history holds its whole allocation, which append's growth leaves up
	// to twice the frame (a 130-byte frame took 256).
	f := &Frame{ID: id, Bytes: AppendFrame(make([]byte, 0, FrameLen(id, ev.Name, ev.Data)), id, ev.Name, ev.Data), At: time.Now()}
	s := h.shardOf(key)
	s.mu.Lock()
	over := false
	if h.cfg.HistorySize > 0 {
		f.home, f.key = s, key
		over = h.keep(s, f)
	}
	// A walk of its own rather than one over nodes collected by keep: with fewer live values around it,
	// this hot loop ran a third faster at 10,000 subscribers.
	for k, ok := key, true; ok; k, ok = parent(k) {
		n := s.nodes[k]
		if n == nil {
			continue
		}
		for _, sub := range n.subs {
			sub.sub.Send(f)
		}
		delivered += len(n.subs)
	}
	s.mu.Unlock()
	if over {
		h.budget.evict()
	}
	return id, delivered, nil
}

// keep puts f in the histories of its key and of the key's ancestors, and on the budget's list, and
// reports whether the budget is now exceeded; the caller evicts once it has let go of the shard's lock,
// which it holds here.
func (h *Hub) keep(s *shard, f *Frame) (over bool) {
	b := h.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, ok := f.key, true; ok; k, ok = parent(k) {
		n := s.node(k)
		before := n.hist.footprint()
		if old := n.hist.push(f, h.cfg.HistorySize); old != nil {
			b.release(old)
		}
		f.refs++
		b.resize(before, n.hist.footprint())
	}
	b.link(f)
	return b.over()
}

// expire drops n's frames published before cutoff. The caller holds n's shard lock.
func (h *Hub) expire(n *node, cutoff time.Time) {
	if n.hist.len() == 0 || !n.hist.at(0).At.Before(cutoff) {
		return
	}
	b := h.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	before := n.hist.footprint()
	for n.hist.len() > 0 && n.hist.at(0).At.Before(cutoff) {
		b.release(n.hist.pop())
	}
	b.resize(before, n.hist.footprint())
}

// Subscribe adds sub to the stream key. With resume set, the frames published after lastEventID are sent
// first, in order; when lastEventID is not retained a reset event precedes whatever is. Replay and
// registration happen under the stream's lock, so no live event is missed or sent twice.
func (h *Hub) Subscribe(key string, sub Subscriber, resume bool, lastEventID string) (*Subscription, Replay) {
	if h.cfg.Engine != nil && resume {
		sc, r, err := h.subscribeShared(key, sub, lastEventID)
		if err == nil {
			return sc, r
		}
		// The shared history cannot be read: say so, with that reason, rather than leave a silent gap;
		// the live events held meanwhile follow.
		s := h.shardOf(key)
		s.mu.Lock()
		defer s.mu.Unlock()
		sub.Send(resetFrameReason(ResetHistoryUnavailable, lastEventID, ""))
		sc.flushHeld()
		r.Reset, r.Reason = true, ResetHistoryUnavailable
		return sc, r
	}
	var r Replay
	s := h.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node(key)
	if resume {
		h.expire(n, time.Now().Add(-h.cfg.HistoryTTL))
		from, ok := n.hist.since(lastEventID)
		if lastEventID == OriginID { // a multi-topic stream's position before any event (position.go)
			from, ok = 0, true
		}
		if !ok {
			r.Reset, r.Reason = true, ResetNotRetained
			earliest := ""
			if n.hist.len() > 0 {
				earliest = n.hist.at(0).ID
			}
			sub.Send(resetFrame(lastEventID, earliest))
		}
		for i := from; i < n.hist.len(); i++ {
			sub.Send(n.hist.at(i))
			r.Frames++
		}
	}
	sc := &Subscription{shard: s, node: n, root: s.node(Root(key)), sub: sub, slot: len(n.subs)}
	n.subs = append(n.subs, sc)
	h.watch(sc, key)
	return sc, r
}

// sendLive sends a frame from the bus unless the replay already did. The caller holds the shard lock.
func (sc *Subscription) sendLive(f *Frame) {
	if sc.replayed != nil {
		if _, dup := sc.replayed[f.ID]; dup {
			return
		}
		sc.replayed = nil
	}
	sc.sub.Send(f)
}

// End ends the streams of key (not of its ancestors) on every node: each is closed once what it has
// queued is written. MCP ends a session's listening stream this way when the session is deleted.
func (h *Hub) End(ctx context.Context, key string) error {
	if h.cfg.Engine != nil {
		return h.cfg.Engine.End(ctx, key)
	}
	h.deliver(key, EndFrame())
	return nil
}

// Refresh delivers grant (see Frame.Refresh) to the streams of key, not of its ancestors, on every node.
// It returns how many streams it reached on this node alone, or -1 with an engine (not known here).
func (h *Hub) Refresh(ctx context.Context, key string, grant []byte) (int, error) {
	if h.cfg.Engine != nil {
		return -1, h.cfg.Engine.Refresh(ctx, key, grant)
	}
	return h.deliver(key, RefreshFrame(grant)), nil
}

// deliver queues a frame received from the engine to key's and its ancestors' local subscribers, and
// returns how many it reached; a control frame goes to key's own subscribers only, and a refresh
// straight to them (it is not an event: neither held back during a replay nor part of its order).
func (h *Hub) deliver(key string, f *Frame) (reached int) {
	s := h.shardOf(key)
	s.mu.Lock()
	for k, ok := key, true; ok && (k == key || !f.End && !f.Refresh); k, ok = parent(k) {
		n := s.nodes[k]
		if n == nil {
			continue
		}
		reached += len(n.subs)
		for _, sub := range n.subs {
			if f.Refresh {
				sub.sub.Send(f)
				continue
			}
			if sub.held != nil {
				sub.held.add(f)
				continue
			}
			sub.sendLive(f)
		}
	}
	s.mu.Unlock()
	return reached
}

// local is the hub as its engine sees it.
type local struct{ h *Hub }

func (l local) Deliver(key string, f *Frame) { l.h.deliver(key, f) }

// Watching reports whether this hub holds a subscription to any stream of root.
func (l local) Watching(root string) bool {
	s := l.h.shardOf(root)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[root]
	return n != nil && n.watchers > 0
}

// Unsubscribe removes the subscription; calling it again does nothing.
func (h *Hub) Unsubscribe(sc *Subscription) {
	s := sc.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc.slot < 0 {
		return
	}
	subs := sc.node.subs
	last := len(subs) - 1
	subs[sc.slot] = subs[last]
	subs[sc.slot].slot = sc.slot
	subs[last] = nil
	sc.node.subs = subs[:last]
	sc.slot = -1
	h.unwatch(sc)
}

// Sweep drops expired history and forgets streams with neither subscribers nor history. Call it
// periodically; it locks one shard at a time.
func (h *Hub) Sweep(now time.Time) {
	cutoff := now.Add(-h.cfg.HistoryTTL)
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for k, n := range s.nodes {
			h.expire(n, cutoff)
			if n.hist.len() == 0 && len(n.subs) == 0 && n.watchers == 0 {
				delete(s.nodes, k)
			}
		}
		s.mu.Unlock()
	}
}

// Streams counts the streams the hub knows (with subscribers or history).
func (h *Hub) Streams() int {
	total := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		total += len(s.nodes)
		s.mu.Unlock()
	}
	return total
}

func (s *shard) node(key string) *node {
	n := s.nodes[key]
	if n == nil {
		n = &node{}
		s.nodes[key] = n
	}
	return n
}

// shardOf picks the shard of key's root (FNV-1a), so a stream and all its ancestors share one lock.
func (h *Hub) shardOf(key string) *shard {
	r := Root(key)
	x := uint32(2166136261)
	for i := 0; i < len(r); i++ {
		x ^= uint32(r[i])
		x *= 16777619
	}
	return &h.shards[x%uint32(len(h.shards))]
}

// resetFrame tells a resuming client that events after lastEventID may be lost; earliest is the oldest
// event still retained, if any.
func resetFrame(lastEventID, earliest string) *Frame {
	return resetFrameReason(ResetNotRetained, lastEventID, earliest)
}
