// Package node is the core of one sseedge node: the topic and client hubs with their engines, publishing,
// subscriptions, the connection directory and the status snapshots. It knows fanout and its engines,
// not sockets and not HTTP: a transport (edge) holds streams and subscribes them here, and the HTTP API
// publishes through it. Modelled on centrifugal/centrifuge's Node, which owns hub, broker and presence.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/clientid"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/transport"
)

// Config configures a Node. The zero value is a node alone, its state in memory.
type Config struct {
	NodeID       string
	History      fanout.Config
	TopicEngine  fanout.Engine // shared topics (Redis); nil keeps them on this node
	ClientEngine fanout.Engine // shared client streams (Redis); nil keeps them on this node
	Directory    Directory     // which node holds which client, and every node's counts; nil: this node only
	// DirectoryInterval is how often the node refreshes its directory entries; default 10s.
	DirectoryInterval time.Duration
	// SweepInterval is how often expired history is dropped and history figures reported; default 15s.
	SweepInterval time.Duration
	// StatusFunctions lists functions for the status snapshots (see StatusFunction); nil lists none.
	StatusFunctions func(ctx context.Context) []StatusFunction
	// Subscriptions keeps clients' server-side subscriptions past their connections; nil: in memory
	// (NewMemorySubscriptions with DefaultSubscriptionTTL).
	Subscriptions SubscriptionStore
	// SubscriptionReadTimeout bounds the read of a client's stored subscriptions when a stream of its
	// opens; default DefaultSubscriptionReadTimeout.
	SubscriptionReadTimeout time.Duration
	// MaxTopicsPerStream bounds a client's stored subscriptions, as it bounds a stream's ?topic= list
	// (MAX_TOPICS_PER_STREAM); 0 or over fanout.MaxTopicsPerStream means that ceiling.
	MaxTopicsPerStream int
	Logger             *slog.Logger
	Metrics            *metrics.Metrics // nil records nothing
}

// DefaultSubscriptionReadTimeout bounds the read of a client's stored subscriptions at open: short,
// since the stream waits for it, and a stream opened without them is better than one not opened.
const DefaultSubscriptionReadTimeout = 300 * time.Millisecond

func (c Config) withDefaults() Config {
	if c.DirectoryInterval <= 0 {
		c.DirectoryInterval = 10 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 15 * time.Second
	}
	if c.History.Budget == nil { // one history budget for the node: its topics and its clients
		c.History.Budget = fanout.NewBudget(c.History)
	}
	if c.History.IDs == nil { // one ID sequence: replays merged across topics and clients are in publish order
		c.History.IDs = fanout.NewIDs()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Subscriptions == nil {
		c.Subscriptions = NewMemorySubscriptions(DefaultSubscriptionTTL)
	}
	if c.SubscriptionReadTimeout <= 0 {
		c.SubscriptionReadTimeout = DefaultSubscriptionReadTimeout
	}
	if c.MaxTopicsPerStream <= 0 || c.MaxTopicsPerStream > fanout.MaxTopicsPerStream {
		c.MaxTopicsPerStream = fanout.MaxTopicsPerStream
	}
	return c
}

// Transport is what the node reads of the transport that holds its streams.
type Transport interface {
	Stats() transport.Stats
}

// Node owns a node's hubs. Create it with New; Start runs its loops, Close stops them.
type Node struct {
	cfg       Config
	log       *slog.Logger
	subs      SubscriptionStore
	started   time.Time
	hubs      [transport.KindCount]*fanout.Hub
	transport atomic.Pointer[Transport]
	published atomic.Uint64 // events accepted by Publish and PublishToClient

	startOnce, closeOnce sync.Once
	stop                 chan struct{}
	loops                sync.WaitGroup
}

// New builds a node; nothing runs until Start.
func New(cfg Config) *Node {
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, subs: cfg.Subscriptions, started: time.Now(), stop: make(chan struct{})}
	n.hubs[transport.Topic] = fanout.NewHub(withEngine(cfg.History, cfg.TopicEngine))
	n.hubs[transport.Client] = fanout.NewHub(withEngine(cfg.History, cfg.ClientEngine))
	return n
}

func withEngine(c fanout.Config, e fanout.Engine) fanout.Config {
	c.Engine = e
	return c
}

// ID is the node's name in the cluster.
func (n *Node) ID() string { return n.cfg.NodeID }

// Started is when the node was built.
func (n *Node) Started() time.Time { return n.started }

// AttachTransport tells the node which transport holds its streams, for its counts in the directory,
// the status snapshots and health. The transport calls it when it is built.
func (n *Node) AttachTransport(t Transport) { n.transport.Store(&t) }

// TransportStats is the attached transport's snapshot, or zeros without one.
func (n *Node) TransportStats() transport.Stats {
	if t := n.transport.Load(); t != nil {
		return (*t).Stats()
	}
	return transport.Stats{}
}

// Start runs the node's loops (history sweep, directory refresh, status snapshots). It is a no-op after
// the first call.
func (n *Node) Start() {
	n.startOnce.Do(func() {
		n.loops.Go(n.sweepLoop)
		n.loops.Go(n.statusLoop)
		if n.cfg.Directory != nil {
			n.loops.Go(n.directoryLoop)
		}
	})
}

// Close stops the loops and waits for them; it is idempotent.
func (n *Node) Close() {
	n.closeOnce.Do(func() { close(n.stop) })
	n.loops.Wait()
}

// Publish sends ev to the streams of key (a client ID or a canonical topic) on every node, and keeps it
// for resume. delivered is the count of local streams reached, -1 when other nodes deliver too (not
// known), or fanout.Replayed for a retry of an idempotent publish. ctx bounds the engine's call and
// carries the caller's trace.
func (n *Node) Publish(ctx context.Context, kind transport.Kind, key string, ev fanout.Event) (id string, delivered int, err error) {
	id, delivered, err = n.hubs[kind].Publish(ctx, key, ev)
	if err == nil && delivered != fanout.Replayed {
		n.cfg.Metrics.EventPublished()
		n.published.Add(1)
	}
	return id, delivered, err
}

// PublishToClient sends an event to a client's personal stream (and its history, for resume). The
// function invoker and MCP deliver results through it; ctx bounds the engine's call and carries the
// caller's trace, so an async result's publish joins the invocation's trace.
func (n *Node) PublishToClient(ctx context.Context, clientID, event string, data []byte) (string, error) {
	if err := clientid.Check(clientID); err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	id, _, err := n.Publish(ctx, transport.Client, clientID, fanout.Event{Name: event, Data: data})
	return id, err
}

// EndClientStreams ends the streams of a client on every node, each once what it has queued is written
// (MCP ends a deleted session's listening stream so).
func (n *Node) EndClientStreams(ctx context.Context, clientID string) error {
	return n.hubs[transport.Client].End(ctx, clientID)
}

// EndTopicStreams ends the streams of a topic (not of its ancestors or descendants) on every node, each
// once what it has queued is written: a GRIP publish with action close ends a channel's held streams so.
func (n *Node) EndTopicStreams(ctx context.Context, topic string) error {
	return n.hubs[transport.Topic].End(ctx, topic)
}

// RefreshClient hands a grant (transport.AppendGrant) to the streams of a client on every node. reached
// is the count of local streams, -1 when other nodes may hold some.
func (n *Node) RefreshClient(ctx context.Context, clientID string, grant []byte) (reached int, err error) {
	return n.hubs[transport.Client].Refresh(ctx, clientID, grant)
}

// Subscribe adds sub to the streams of key, replaying what followed lastEventID first ("": live only).
func (n *Node) Subscribe(kind transport.Kind, key string, sub fanout.Subscriber, lastEventID string) *fanout.Subscription {
	sc, replay := n.hubs[kind].Subscribe(key, sub, lastEventID != "", lastEventID)
	n.cfg.Metrics.EventsReplayed(replay.Frames)
	if replay.Reset {
		n.cfg.Metrics.StreamReset()
		n.log.Debug("resume gap", "stream", kind.String(), "key", key, "last_event_id", lastEventID, "reason", replay.Reason)
	}
	return sc
}

// Unsubscribe removes a subscription Subscribe made for kind.
func (n *Node) Unsubscribe(kind transport.Kind, sc *fanout.Subscription) {
	n.hubs[kind].Unsubscribe(sc)
}

// Published is the count of events accepted since start.
func (n *Node) Published() uint64 { return n.published.Load() }

// NodeCounts is every live node's stream counts by kind, from the directory; nil without one.
func (n *Node) NodeCounts(ctx context.Context) (map[string]map[string]int64, error) {
	if n.cfg.Directory == nil {
		return nil, nil
	}
	return n.cfg.Directory.NodeCounts(ctx)
}

// sweepLoop drops expired history and reports what history holds, on one timer.
func (n *Node) sweepLoop() {
	t := time.NewTicker(n.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			for _, h := range n.hubs {
				h.Sweep(now)
			}
			st := n.cfg.History.Budget.Stats()
			n.cfg.Metrics.SetHistory(st.Bytes, st.Streams, st.Evicted)
		}
	}
}
