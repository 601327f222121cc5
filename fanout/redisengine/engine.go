// Package redisengine shares sseedge hubs between nodes through Redis (or Redis Cluster): the history
// of every stream lives in a Redis Stream, and each event reaches the nodes that hold streams of its
// root over sharded pub/sub.
//
// Streams are spread over a fixed number of partitions. A partition is one hash slot ({p<N>}) holding
// the history streams and the channels of its roots, and a channel of its own for the bus liveness
// probe. A publish is one Lua script that appends to the root's history (XADD, which assigns the ID)
// and publishes on the root's channel (SPUBLISH) atomically, so on every node events arrive in the
// order of their IDs. A node subscribes to a root's channel while its hubs hold a stream of the root
// (interest.go), on one dedicated connection per partition (subconn.go), so it receives what it
// delivers, not what the cluster publishes; the events published while a subscription is being made
// are read from history once Redis confirms it (rootfill.go).
//
// Tracing: each Redis call is a client span ("redis publish", "redis history") under the caller's
// span, and a publish carries its W3C traceparent on the bus, so the "deliver" span each node starts
// when the event arrives belongs to the publisher's trace. With tracing off the spans are no-ops and
// the traceparent is only sent when the publisher has a sampled trace.
package redisengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/metrics"
)

// TracerName is the instrumentation scope of the engine's spans.
const TracerName = "sseedge/redisengine"

// Config configures an Engine; the zero value gives the defaults.
type Config struct {
	Prefix      string        // key prefix; default "sseedge"
	Partitions  int           // default 64
	HistorySize int           // events kept per root; default 1000
	HistoryTTL  time.Duration // default 5m
	Timeout     time.Duration // bound on every Redis call; default 1s
	Logger      *slog.Logger
	Metrics     *metrics.Metrics // observes each Redis call's round trip; nil observes nothing
	// TracerProvider makes the engine's spans. Default: otel's global provider (no-op until set).
	TracerProvider trace.TracerProvider

	// ProbeInterval and ProbeTimeout pace the bus liveness probe (probe.go); defaults
	// DefaultProbeInterval and DefaultProbeTimeout.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration

	// ResumeReads bounds the history reads of resuming streams in flight at once, and ResumeWait how
	// long one resume waits for its turn and retries a failed read (see Since); defaults
	// DefaultResumeReads and DefaultResumeWait.
	ResumeReads int
	ResumeWait  time.Duration

	// PublishGrace is how long past a publish's deadline (Timeout after it is sent) the node waits for
	// Redis's answer before it answers 503, so that the 503 means not applied (see Publish); default
	// DefaultPublishGrace.
	PublishGrace time.Duration

	// Linger is how long a root's channel stays subscribed after its last stream here leaves (see
	// interest.go); default DefaultLinger.
	Linger time.Duration

	// PubSub makes the partitions' dedicated pub/sub connections (subconn.go); default the engine's
	// client. Each holds that client's per-connection buffers, 0.5 MiB each way by default: a client
	// of its own with small ones (redisx.NewPubSubClient) makes a partition's connection cost about
	// 0.12 MiB instead of 1.4 MiB (docs/clustering.md). The engine does not close it.
	PubSub rueidis.Client
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "sseedge"
	}
	if c.Partitions <= 0 {
		c.Partitions = 64
	}
	if c.HistorySize <= 0 {
		c.HistorySize = 1000
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = 5 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.ResumeReads <= 0 {
		c.ResumeReads = DefaultResumeReads
	}
	if c.ResumeWait <= 0 {
		c.ResumeWait = DefaultResumeWait
	}
	if c.PublishGrace <= 0 {
		c.PublishGrace = DefaultPublishGrace
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	return c
}

// Marks that start the optional fields of a bus message, before the event fields.
const (
	traceMark = "\x01" // the publisher's traceparent
	prevMark  = "\x02" // the ID of the root's previous event
)

// Engine is the Redis engine of one node. Create it with New, get an fanout.Engine per hub with
// Namespace, Start it once the hubs exist, and Close it.
type Engine struct {
	cfg    Config
	client rueidis.Client
	pubsub rueidis.Client // Config.PubSub, else client
	log    *slog.Logger
	m      *metrics.Metrics
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	mu   sync.RWMutex
	hubs map[string]fanout.Local

	probes   sync.Map // probe nonce -> chan struct{}
	gaps     gaps
	catching []atomic.Bool // per partition: a catch-up after a renewed subscription is under way
	live     liveness
	interest interest      // the per-root subscriptions (interest.go)
	received atomic.Uint64 // event messages heard on the bus (BusStats)
	unwanted atomic.Uint64 // of which no local stream read the root
	gapFills atomic.Uint64 // history reads that filled a gap in a root's bus messages (BusStats)
	resumes  chan struct{} // a slot per resume reading history (Config.ResumeReads)
	clocks   []clock       // per partition: a bound of its Redis server's clock (publish.go)
	epoch    time.Time     // this node's clock as Engine.local counts it
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// New returns an engine on client. It does not touch Redis until Start.
func New(client rueidis.Client, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	e := &Engine{cfg: cfg, client: client, log: cfg.Logger, m: cfg.Metrics, tracer: tp.Tracer(TracerName),
		prop: propagation.TraceContext{}, hubs: make(map[string]fanout.Local)}
	e.pubsub = cfg.PubSub
	if e.pubsub == nil {
		e.pubsub = client
	}
	e.gaps.e = e
	e.catching = make([]atomic.Bool, cfg.Partitions)
	e.live.init(e)
	e.interest.init(e)
	e.resumes = make(chan struct{}, cfg.ResumeReads)
	e.clocks, e.epoch = make([]clock, cfg.Partitions), time.Now()
	return e
}

// Namespace returns the fanout.Engine of one hub ("t" for topics, "c" for clients).
func (e *Engine) Namespace(ns string) fanout.Engine { return &namespace{e: e, ns: ns} }

// Start subscribes to every partition and returns once each subscription has carried a probe
// message, so that events published after Start returns reach this node. The subscriptions are kept,
// and renewed after Redis comes back, until Close.
func (e *Engine) Start(ctx context.Context) error {
	life, stop := context.WithCancel(context.Background())
	e.stop = stop
	for p := range e.cfg.Partitions {
		e.wg.Go(func() { e.listen(life, p) })
	}
	began := time.Now()
	e.wg.Go(func() { e.live.run(life) })
	e.interest.poke() // its first turn makes every partition's pub/sub connection
	e.wg.Go(func() { e.interest.run(life) })
	for p := range e.cfg.Partitions {
		if err := e.probe(ctx, p); err != nil {
			return fmt.Errorf("redisengine: partition %d: %w", p, err)
		}
	}
	e.live.confirmed(began)
	return nil
}

// Close ends the subscriptions.
func (e *Engine) Close() {
	if e.stop != nil {
		e.stop()
	}
	e.wg.Wait()
}

// listen keeps one partition's subscription, renewing it with back-off while Redis is away.
func (e *Engine) listen(ctx context.Context, p int) {
	ch := e.channel(p)
	backoff := 50 * time.Millisecond
	// Every confirmation after the first is a renewed subscription, by rueidis after a reconnect or by
	// this loop: events published while it was down show as gaps at their roots' next events, and a
	// catch-up looks at the partition's roots at once, so a root that stays quiet is not left short.
	var subscribed atomic.Bool
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind != "ssubscribe" || !subscribed.Swap(true) {
			return
		}
		if e.catching[p].CompareAndSwap(false, true) { // one at a time, however often it is renewed
			e.wg.Go(func() {
				defer e.catching[p].Store(false)
				e.gaps.catchUp(ctx, p)
			})
		}
	})
	for ctx.Err() == nil {
		// rueidis renews a subscription itself after a reconnect; Receive returns only when it gives up.
		began := time.Now()
		err := e.client.Receive(hooked, e.client.B().Ssubscribe().Channel(ch).Build(), func(m rueidis.PubSubMessage) {
			e.receive(m.Message)
		})
		if ctx.Err() != nil {
			return
		}
		e.live.lost(p, err)
		if time.Since(began) > 10*time.Second { // it worked for a while: start the back-off afresh
			backoff = 50 * time.Millisecond
		}
		e.log.Warn("redis subscription lost; renewing", "channel", ch, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// probe publishes a nonce on partition p until this node receives it.
func (e *Engine) probe(ctx context.Context, p int) error {
	nonce := "probe:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":" + strconv.Itoa(p)
	got := make(chan struct{})
	e.probes.Store(nonce, got)
	defer e.probes.Delete(nonce)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		began := time.Now()
		_ = e.client.Do(cctx, e.client.B().Spublish().Channel(e.channel(p)).Message("\x00"+nonce).Build()).Error()
		e.observeCommand("SPUBLISH", time.Since(began))
		cancel()
		select {
		case <-got:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// receive delivers one message to its hub: "ns\nkey\nid\nname\nuserID\ndata", optionally preceded
// by "\x02prevID\n" and, before that, "\x01traceparent\n" (messages of nodes that predate these
// fields have no such prefix). A message with a traceparent is delivered under a "deliver" span in the
// publisher's trace. It runs on the subscription's reader and must not block: a gap in a root's events
// is filled from history on a goroutine of its own (see gaps.go).
func (e *Engine) receive(msg string) {
	if nonce, ok := strings.CutPrefix(msg, "\x00"); ok {
		e.probed(nonce)
		return
	}
	var m busMessage
	var ok bool
	if rest, found := strings.CutPrefix(msg, traceMark); found {
		if m.traceparent, msg, ok = strings.Cut(rest, "\n"); !ok {
			e.log.Warn("malformed message on the bus", "len", len(rest))
			return
		}
	}
	if rest, found := strings.CutPrefix(msg, prevMark); found {
		m.chained = true
		if m.prev, msg, ok = strings.Cut(rest, "\n"); !ok {
			e.log.Warn("malformed message on the bus", "len", len(rest))
			return
		}
	}
	parts := strings.SplitN(msg, "\n", 6)
	if len(parts) != 6 {
		e.log.Warn("malformed message on the bus", "len", len(msg))
		return
	}
	e.mu.RLock()
	local := e.hubs[parts[0]]
	e.mu.RUnlock()
	if local == nil {
		return
	}
	m.ns, m.key = parts[0], parts[1]
	unwanted := !local.Watching(fanout.Root(m.key))
	e.received.Add(1)
	if unwanted {
		e.unwanted.Add(1)
	}
	e.m.BusReceived(unwanted)
	switch parts[3] {
	case fanout.EndEventName:
		m.frame = fanout.EndFrame()
	case fanout.RefreshEventName:
		m.frame = fanout.RefreshFrame([]byte(parts[5]))
	default:
		m.id = parts[2]
		m.frame = frame(parts[2], parts[3], parts[4], parts[5])
	}
	e.gaps.receive(m, local)
}

// probed notes that the probe of nonce came back.
func (e *Engine) probed(nonce string) {
	if ch, ok := e.probes.Load(nonce); ok {
		select {
		case <-ch.(chan struct{}):
		default:
			close(ch.(chan struct{}))
		}
	}
}

// dispatch hands one message to its hub, under a "deliver" span in the publisher's trace when the
// message carries one.
func (e *Engine) dispatch(m busMessage, local fanout.Local) {
	if m.traceparent == "" {
		local.Deliver(m.key, m.frame)
		return
	}
	ctx := e.prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": m.traceparent})
	_, span := e.tracer.Start(ctx, "deliver", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "redis"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("sseedge.namespace", m.ns),
			attribute.String("sseedge.event_id", m.frame.ID),
		))
	local.Deliver(m.key, m.frame)
	span.End()
}

// frame encodes an event as its hub's subscribers see it: a user-given ID, else the Redis ID.
func frame(redisID, name, userID, data string) *fanout.Frame {
	id := userID
	if id == "" {
		id = redisID
	}
	return &fanout.Frame{ID: id, Bytes: fanout.AppendFrame(nil, id, name, []byte(data)), At: idTime(redisID)}
}

// idTime is the publish time in a Redis stream ID ("<ms>-<seq>").
func idTime(id string) time.Time {
	ms, _, ok := parseID(id)
	if !ok {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

func (e *Engine) partition(ns, root string) int {
	x := uint32(2166136261)
	for _, s := range [...]string{ns, "\n", root} {
		for i := 0; i < len(s); i++ {
			x ^= uint32(s[i])
			x *= 16777619
		}
	}
	return int(x % uint32(e.cfg.Partitions))
}

func (e *Engine) channel(p int) string {
	return e.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}:ch"
}

// rootChannel is the channel of one root's events, ends and refreshes, in its partition's slot beside
// its history: only the nodes that hold a stream of the root subscribe to it.
func (e *Engine) rootChannel(p int, ns, root string) string {
	return e.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}:r:" + ns + ":" + root
}

func (e *Engine) historyKey(p int, ns, root string) string {
	return e.cfg.Prefix + ":{p" + strconv.Itoa(p) + "}:h:" + ns + ":" + root
}

// unavailable wraps a Redis error as fanout.ErrUnavailable (redisx.ErrUnavailable, the same value):
// the engine's callers answer 503 for any failure of the shared state, even one redisx.Classify would
// not call unavailable (a NOPERM), since none of them is the caller's fault. A nil reply is none.
func (e *Engine) unavailable(op string, err error) error {
	if err == nil || rueidis.IsRedisNil(err) {
		return nil
	}
	if err = redisx.Classify(nil, err); !errors.Is(err, fanout.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", fanout.ErrUnavailable, err)
	}
	return fmt.Errorf("redisengine: %s: %w", op, err)
}

// Ping checks that Redis answers, for health checks, as one call of redisx's instrumentation.
func (e *Engine) Ping(ctx context.Context) error {
	return e.call(ctx, "ping", "PING", func(ctx context.Context) error {
		return e.client.Do(ctx, e.client.B().Ping().Build()).Error()
	})
}

// call runs one Redis call through redisx's instrumentation: its client span ("redis <op>"), the
// engine's deadline and the command-duration metric. A failure comes back wrapped as
// fanout.ErrUnavailable; a nil reply is none.
func (e *Engine) call(ctx context.Context, op, command string, do func(ctx context.Context) error) error {
	return e.unavailable(op, e.redis().Call(ctx, op, command, do))
}

// redis is the engine's one instrumentation of its Redis calls (redisx): spans, deadline, metric.
func (e *Engine) redis() redisx.Instrumentation {
	return redisx.Instrumentation{Tracer: e.tracer, Observer: e.m, Timeout: e.cfg.Timeout}
}

// startCall starts the client span of one Redis call, "redis <op>", as redisx's instrumentation names it,
// for a call that times itself (then observe).
func (e *Engine) startCall(ctx context.Context, name, operation string) (context.Context, trace.Span) {
	return e.redis().Start(ctx, strings.TrimPrefix(name, "redis "), operation)
}

// observeCommand records that command took d, through the same instrumentation, for a call that times itself:
// a publish (its deadline is part of its answer), the probes and the pub/sub commands.
func (e *Engine) observeCommand(command string, d time.Duration) { e.redis().Observe(command, d) }
