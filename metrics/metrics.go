// Package metrics holds the Prometheus collectors of sseedge and the OpenTelemetry tracing setup.
//
// Everything is built by New on a caller-supplied registry: there is no package-level state and no
// init, so tests can build as many independent instances as they like, and a nil *Metrics is a valid
// value whose every method does nothing (packages take a *Metrics and never need to check it).
//
// The edge's hot path (frames written, connections opened and closed, delivery latency) must not
// allocate: every labelled child it touches is resolved once in New and kept in an array indexed by
// an enum (Kind, CloseReason, RejectReason), so a call is one bounds check and one atomic add.
//
// Label cardinality is bounded by construction. kind, reason and outcome are enums. function is the
// name of a registered function: the function registry bounds how many exist, ForgetFunction drops
// a deleted function's series, and WithMaxFunctions caps the distinct names (further names share
// the series function="_other") as a safety net against a registry that grows without bound.
// command is a Redis command name chosen by code, never by a request, and is capped the same way.
// Client IDs and topics are never labels.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every sseedge metric.
const Namespace = "sseedge"

// OverflowLabel is the function or command label value shared by every name beyond the cap set by
// WithMaxFunctions or WithMaxRedisCommands.
const OverflowLabel = "_other"

// Defaults of the caps on the open labels.
const (
	DefaultMaxFunctions     = 1024
	DefaultMaxRedisCommands = 64
)

// Histogram buckets, in seconds (attempts: a count). Delivery and heartbeat times are expected in
// the sub-millisecond to tens-of-milliseconds range (DESIGN.md's p99 goal is 10 ms); invocations
// span a local function's millisecond to a slow function's timeout.
var (
	fastBuckets     = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	invokeBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	attemptsBuckets = []float64{1, 2, 3, 4, 5, 7, 10}
	redisBuckets    = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// Option adjusts New.
type Option func(*config)

type config struct {
	maxFunctions     int
	maxRedisCommands int
}

// WithMaxFunctions caps the distinct function label values (default DefaultMaxFunctions); names
// beyond the cap are reported as function="_other". n < 1 means the default.
func WithMaxFunctions(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxFunctions = n
		}
	}
}

// WithMaxRedisCommands caps the distinct command label values (default DefaultMaxRedisCommands);
// further commands are reported as command="_other". n < 1 means the default.
func WithMaxRedisCommands(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxRedisCommands = n
		}
	}
}

// Metrics holds every sseedge collector, with the labelled children of the hot path pre-resolved.
// Its methods are safe for concurrent use, and all of them are no-ops on a nil *Metrics.
type Metrics struct {
	// edge
	conns           [numKinds]prometheus.Gauge
	opened          [numKinds]prometheus.Counter
	closed          [numCloseReasons]prometheus.Counter
	eventsPublished prometheus.Counter
	framesSent      prometheus.Counter
	bytesSent       prometheus.Counter
	delivery        prometheus.Histogram
	heartbeatBatch  prometheus.Histogram
	replayed        prometheus.Counter
	resets          prometheus.Counter
	busRecovered    prometheus.Counter
	bus             *busMetrics // bus.go
	busUnrecovered  prometheus.Counter
	slowConsumers   prometheus.Counter
	rejected        [numRejectReasons]prometheus.Counter

	// history bounds, MCP session eviction, stream token expiry
	historyBytes   prometheus.Gauge
	historyStreams prometheus.Gauge
	historyEvicted prometheus.Counter
	historySeen    uint64 // the eviction total SetHistory last saw; guarded by mu
	mcpEvicted     [numSessionEvictions]prometheus.Counter
	tokenExpired   prometheus.Counter
	tokenRefresh   [2]prometheus.Counter // refused, ok

	// invoker
	invocations *prometheus.CounterVec
	invokeDur   *prometheus.HistogramVec
	attempts    prometheus.Histogram
	breaker     *prometheus.GaugeVec

	// registry (Redis backend)
	redisCmd    *prometheus.HistogramVec
	redisHits   prometheus.Counter
	redisMisses prometheus.Counter
	redisUp     prometheus.Gauge
	busProbe    prometheus.Histogram
	busProbeBad prometheus.Counter

	// resumes from Redis history, and what a publish to Redis answers when Redis is slow
	resumeWaits       prometheus.Counter
	resumeRetries     prometheus.Counter
	resumeUnavailable prometheus.Counter
	publishExpired    prometheus.Counter
	publishUnknown    prometheus.Counter
	idemReplayed      prometheus.Counter
	idemConflict      prometheus.Counter

	cfg           config
	mu            sync.RWMutex
	functions     map[string]*Function
	redisCommands map[string]prometheus.Observer
}

// NewRegistry returns a registry that already holds the Go runtime and process collectors (go_*,
// process_*), which is what a node's /metrics should serve next to New's collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// New builds every sseedge collector and registers it with reg. A nil reg builds working but
// unregistered collectors (handy in tests). Like promauto, New panics if a collector is already
// registered, which only happens when New is called twice on one registry: a wiring bug.
func New(reg prometheus.Registerer, opts ...Option) *Metrics {
	cfg := config{maxFunctions: DefaultMaxFunctions, maxRedisCommands: DefaultMaxRedisCommands}
	for _, o := range opts {
		o(&cfg)
	}
	m := &Metrics{
		cfg:           cfg,
		functions:     make(map[string]*Function),
		redisCommands: make(map[string]prometheus.Observer),
	}

	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "connections",
		Help: "Streams currently held by this node, by kind (sse, topic, mcp).",
	}, []string{"kind"})
	opened := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "connections_opened_total",
		Help: "Streams accepted, by kind (sse, topic, mcp).",
	}, []string{"kind"})
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "connections_closed_total",
		Help: "Streams ended, by reason (client, slow_consumer, shutdown, error, timeout).",
	}, []string{"reason"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_rejected_total",
		Help: "Requests refused before any work, by reason (bad_request, too_large, rate_limited, unauthorized, forbidden, not_found).",
	}, []string{"reason"})
	for k := Kind(0); k < numKinds; k++ {
		m.conns[k] = conns.WithLabelValues(k.String())
		m.opened[k] = opened.WithLabelValues(k.String())
	}
	for r := CloseReason(0); r < numCloseReasons; r++ {
		m.closed[r] = closed.WithLabelValues(r.String())
	}
	for r := RejectReason(0); r < numRejectReasons; r++ {
		m.rejected[r] = rejected.WithLabelValues(r.String())
	}

	m.eventsPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_published_total",
		Help: "Events accepted for fan-out (topic publishes and direct client events) on this node.",
	})
	m.framesSent = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "frames_sent_total",
		Help: "Event-stream frames written to streams (events, replays and heartbeats).",
	})
	m.bytesSent = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bytes_sent_total",
		Help: "Bytes of event-stream frames written to streams.",
	})
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "delivery_latency_seconds",
		Help:    "Time from an event's publish to its frame being written to a stream.",
		Buckets: fastBuckets,
	})
	m.heartbeatBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "heartbeat_batch_seconds",
		Help:    "Time to write one heartbeat tick's shared frame to every stream of the batch.",
		Buckets: fastBuckets,
	})
	m.replayed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "replayed_events_total",
		Help: "Events replayed from history to resuming streams (Last-Event-ID).",
	})
	m.resets = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "resets_total",
		Help: "Resumes whose Last-Event-ID was older than the retained history, answered with a reset event.",
	})
	m.busRecovered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bus_recovered_events_total",
		Help: "Events this node missed on the Redis bus (its subscription was being renewed) and delivered from history when the next event of their root showed the gap.",
	})
	m.busUnrecovered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bus_unrecovered_gaps_total",
		Help: "Gaps on the Redis bus that history could not fill (trimmed or expired, or Redis failed): live subscribers missed events until they resume.",
	})
	m.slowConsumers = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "slow_consumers_total",
		Help: "Times a stream's pending output exceeded the slow-consumer limit.",
	})

	m.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "invocations_total",
		Help: "Function invocations, by function and outcome (ok, error, timeout, circuit_open, rejected).",
	}, []string{"function", "outcome"})
	m.invokeDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "invocation_duration_seconds",
		Help:    "Duration of invocations that reached the function, retries included, by function.",
		Buckets: invokeBuckets,
	}, []string{"function"})
	m.attempts = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "invocation_attempts",
		Help:    "Attempts made per invocation that reached the function (1 = no retry).",
		Buckets: attemptsBuckets,
	})
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "breaker_state",
		Help: "Circuit breaker state by function: 0 closed, 1 half-open, 2 open.",
	}, []string{"function"})

	m.redisCmd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "redis_command_duration_seconds",
		Help:    "Redis command round-trip time, by command.",
		Buckets: redisBuckets,
	}, []string{"command"})
	m.redisHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "redis_cache_hits_total",
		Help: "Registry reads answered by the client-side cache without a Redis round trip.",
	})
	m.redisMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "redis_cache_misses_total",
		Help: "Registry reads that needed a Redis round trip.",
	})
	m.redisUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "redis_up",
		Help: "1 while this node's Redis connection is healthy; 0 while it is down or the node runs embedded (no REDIS_ADDR).",
	})
	m.busProbe = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "bus_probe_seconds",
		Help:    "Time from sending one liveness probe on every bus partition to the last one back (or the probe timeout).",
		Buckets: redisBuckets,
	})
	m.busProbeBad = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bus_probe_failures_total",
		Help: "Bus liveness probes (one per partition a round) refused by Redis or not back on the node's own subscription within the timeout; each marks the bus down and renews its subscription.",
	})

	m.historyBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "history_bytes",
		Help: "Bytes the in-memory history holds (frames and the streams keeping them), against HISTORY_MAX_BYTES.",
	})
	m.historyStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "history_streams",
		Help: "Streams with in-memory history, against HISTORY_MAX_STREAMS.",
	})
	m.historyEvicted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "history_evicted_total",
		Help: "Events taken out of in-memory history by HISTORY_MAX_BYTES or HISTORY_MAX_STREAMS before their TTL; a client resuming from one gets reset.",
	})
	mcpEvicted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "mcp_sessions_evicted_total",
		Help: "MCP sessions evicted from the in-memory store to make room, by reason (address_limit: its source address was at its bound; store_full: the store was).",
	}, []string{"reason"})
	for r := SessionEviction(0); r < numSessionEvictions; r++ {
		m.mcpEvicted[r] = mcpEvicted.WithLabelValues(r.String())
	}
	m.tokenExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "stream_tokens_expired_total",
		Help: "Streams closed because their token expired (event token_expired) without a refresh.",
	})
	tokenRefresh := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "stream_token_refreshes_total",
		Help: "POST /sse/{clientId}/token and /subscribe/{topic}/token calls, by outcome (ok: a live stream's expiry moved; refused).",
	}, []string{"outcome"})
	m.tokenRefresh[0], m.tokenRefresh[1] = tokenRefresh.WithLabelValues("refused"), tokenRefresh.WithLabelValues("ok")
	if reg != nil {
		reg.MustRegister(m.historyBytes, m.historyStreams, m.historyEvicted, mcpEvicted, m.tokenExpired, tokenRefresh)
	}

	m.resumeWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "resume_waits_total",
		Help: "Resuming streams that waited for a Redis history read slot (a node reads a bounded number of histories at once).",
	})
	m.resumeRetries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "resume_read_retries_total",
		Help: "Redis history reads of resuming streams tried again after a failure.",
	})
	m.resumeUnavailable = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "resume_history_unavailable_total",
		Help: "Resumes whose Redis history could not be read in time: the stream started with a reset, reason history_unavailable.",
	})
	m.publishExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "publish_expired_total",
		Help: "Publishes Redis ran after their deadline and refused (not applied, answered 503), as far as the node saw: a refusal after the node gave up is not seen.",
	})
	m.publishUnknown = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "publish_outcome_unknown_total",
		Help: "Publishes whose connection to Redis was lost while in flight: answered 503 with Sseedge-Applied: unknown.",
	})
	m.idemReplayed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "publish_idempotent_replays_total",
		Help: "Publishes whose Idempotency-Key was seen within the window: answered with the first publish's ID, not applied again.",
	})
	m.idemConflict = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "publish_idempotency_conflicts_total",
		Help: "Publishes refused (422) because their Idempotency-Key was used within the window for a different event.",
	})
	if reg != nil {
		reg.MustRegister(m.resumeWaits, m.resumeRetries, m.resumeUnavailable, m.publishExpired, m.publishUnknown, m.idemReplayed, m.idemConflict)
	}

	if reg != nil {
		reg.MustRegister(m.busProbe, m.busProbeBad)
		reg.MustRegister(
			conns, opened, closed, rejected,
			m.eventsPublished, m.framesSent, m.bytesSent, m.delivery, m.heartbeatBatch,
			m.replayed, m.resets, m.busRecovered, m.busUnrecovered, m.slowConsumers,
			m.invocations, m.invokeDur, m.attempts, m.breaker,
			m.redisCmd, m.redisHits, m.redisMisses, m.redisUp,
		)
	}
	m.bus = newBusMetrics(reg)
	return m
}

// ConnOpened counts a stream of kind k accepted and held. Unknown kinds are ignored.
func (m *Metrics) ConnOpened(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.opened[k].Inc()
	m.conns[k].Inc()
}

// ConnClosed counts a stream of kind k ended for reason r; it must pair with one ConnOpened(k).
// An unknown reason is counted as CloseError; an unknown kind is ignored, as ConnOpened ignored it.
func (m *Metrics) ConnClosed(k Kind, r CloseReason) {
	if m == nil || k >= numKinds {
		return
	}
	if r >= numCloseReasons {
		r = CloseError
	}
	m.conns[k].Dec()
	m.closed[r].Inc()
}

// EventPublished counts one event accepted for fan-out, whatever its number of recipients.
func (m *Metrics) EventPublished() {
	if m == nil {
		return
	}
	m.eventsPublished.Inc()
}

// FramesSent counts frames frames totalling n bytes. A broadcast loop should count once per batch
// rather than once per recipient: at a million deliveries a second, one shared counter touched by
// every core is itself a bottleneck.
func (m *Metrics) FramesSent(frames, n int) {
	if m == nil || frames <= 0 {
		return
	}
	m.framesSent.Add(float64(frames))
	m.bytesSent.Add(float64(n))
}

// ObserveDelivery records the time from an event's publish to the write of its frame. At broadcast
// scale, observe a sample per batch (say the first and last recipient) rather than every frame.
func (m *Metrics) ObserveDelivery(d time.Duration) {
	if m == nil {
		return
	}
	m.delivery.Observe(d.Seconds())
}

// ObserveHeartbeatBatch records the time one heartbeat tick took to reach every stream of its batch.
func (m *Metrics) ObserveHeartbeatBatch(d time.Duration) {
	if m == nil {
		return
	}
	m.heartbeatBatch.Observe(d.Seconds())
}

// EventsReplayed counts n events replayed from history to a resuming stream.
func (m *Metrics) EventsReplayed(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.replayed.Add(float64(n))
}

// StreamReset counts a resume that could not be honoured and started with a reset event.
func (m *Metrics) StreamReset() {
	if m == nil {
		return
	}
	m.resets.Inc()
}

// BusRecovered counts n events missed on the Redis bus and delivered from history instead.
func (m *Metrics) BusRecovered(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.busRecovered.Add(float64(n))
}

// BusGapUnrecovered counts a gap on the Redis bus that history could not fill.
func (m *Metrics) BusGapUnrecovered() {
	if m == nil {
		return
	}
	m.busUnrecovered.Inc()
}

// SlowConsumer counts a stream caught over the slow-consumer limit. Whether the stream is then
// dropped is counted separately, by ConnClosed(kind, CloseSlowConsumer).
func (m *Metrics) SlowConsumer() {
	if m == nil {
		return
	}
	m.slowConsumers.Inc()
}

// RequestRejected counts a request refused for reason r. Unknown reasons count as RejectBadRequest.
func (m *Metrics) RequestRejected(r RejectReason) {
	if m == nil {
		return
	}
	if r >= numRejectReasons {
		r = RejectBadRequest
	}
	m.rejected[r].Inc()
}

// Function holds the pre-resolved series of one function. Resolve it once with Metrics.Function (at
// registration, next to the function's breaker) and keep it; its methods do not allocate. A nil
// *Function is valid and does nothing.
type Function struct {
	name     string
	outcomes [numOutcomes]prometheus.Counter
	duration prometheus.Observer
	attempts prometheus.Observer
	breaker  prometheus.Gauge
}

// Function returns the series of the function named name, creating them on first use with every
// outcome at zero and the breaker closed. Once WithMaxFunctions distinct names exist, further names
// share the series of OverflowLabel. Returns nil on a nil *Metrics.
func (m *Metrics) Function(name string) *Function {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	f := m.functions[name]
	m.mu.RUnlock()
	if f != nil {
		return f
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f = m.functions[name]; f != nil {
		return f
	}
	label := name
	if len(m.functions) >= m.cfg.maxFunctions {
		if f = m.functions[OverflowLabel]; f != nil {
			return f
		}
		label = OverflowLabel
	}
	f = &Function{
		name:     label,
		duration: m.invokeDur.WithLabelValues(label),
		attempts: m.attempts,
		breaker:  m.breaker.WithLabelValues(label),
	}
	for o := Outcome(0); o < numOutcomes; o++ {
		f.outcomes[o] = m.invocations.WithLabelValues(label, o.String())
	}
	f.breaker.Set(float64(BreakerClosed))
	m.functions[label] = f
	return f
}

// ForgetFunction deletes the series of a function that was removed from the registry, so deleted
// functions do not accumulate. Handles obtained earlier keep working but no longer export anything.
func (m *Metrics) ForgetFunction(name string) {
	if m == nil || name == OverflowLabel {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.functions[name]; !ok {
		return
	}
	delete(m.functions, name)
	for o := Outcome(0); o < numOutcomes; o++ {
		m.invocations.DeleteLabelValues(name, o.String())
	}
	m.invokeDur.DeleteLabelValues(name)
	m.breaker.DeleteLabelValues(name)
}

// ObserveInvocation is Function(function).Invoked(o, d, attempts), for callers that do not keep the
// handle; it does not allocate once the function's series exist.
func (m *Metrics) ObserveInvocation(function string, o Outcome, d time.Duration, attempts int) {
	m.Function(function).Invoked(o, d, attempts)
}

// SetBreakerState is Function(function).SetBreakerState(s), shaped for a gobreaker OnStateChange
// callback, which receives the breaker's name.
func (m *Metrics) SetBreakerState(function string, s BreakerState) {
	m.Function(function).SetBreakerState(s)
}

// Name is the label value f reports under: the function's name, or OverflowLabel.
func (f *Function) Name() string {
	if f == nil {
		return ""
	}
	return f.name
}

// Invoked counts one invocation ending with outcome o after d and attempts attempts. Duration and
// attempts are recorded only for outcomes that reached the function (ok, error, timeout), so that
// instant refusals (circuit_open, rejected) do not drag the latency quantiles toward zero. An
// unknown outcome counts as OutcomeError.
func (f *Function) Invoked(o Outcome, d time.Duration, attempts int) {
	if f == nil {
		return
	}
	if o >= numOutcomes {
		o = OutcomeError
	}
	f.outcomes[o].Inc()
	if o.called() {
		f.duration.Observe(d.Seconds())
		if attempts > 0 {
			f.attempts.Observe(float64(attempts))
		}
	}
}

// SetBreakerState reports the function's breaker state.
func (f *Function) SetBreakerState(s BreakerState) {
	if f == nil {
		return
	}
	f.breaker.Set(float64(s))
}

// ObserveRedisCommand records one Redis command's round trip. command must come from code (a
// constant such as "GET" or "XADD"), never from a request; distinct commands beyond
// WithMaxRedisCommands share OverflowLabel. It does not allocate once the command has been seen.
func (m *Metrics) ObserveRedisCommand(command string, d time.Duration) {
	if m == nil {
		return
	}
	m.mu.RLock()
	obs := m.redisCommands[command]
	m.mu.RUnlock()
	if obs == nil {
		obs = m.redisCommand(command)
	}
	obs.Observe(d.Seconds())
}

// redisCommand resolves the observer of command, or of OverflowLabel past the cap.
func (m *Metrics) redisCommand(command string) prometheus.Observer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if obs := m.redisCommands[command]; obs != nil {
		return obs
	}
	label := command
	if len(m.redisCommands) >= m.cfg.maxRedisCommands {
		if obs := m.redisCommands[OverflowLabel]; obs != nil {
			return obs
		}
		label = OverflowLabel
	}
	obs := m.redisCmd.WithLabelValues(label)
	m.redisCommands[label] = obs
	return obs
}

// RedisCacheHit counts a registry read served by the client-side cache.
func (m *Metrics) RedisCacheHit() {
	if m == nil {
		return
	}
	m.redisHits.Inc()
}

// RedisCacheMiss counts a registry read that went to Redis.
func (m *Metrics) RedisCacheMiss() {
	if m == nil {
		return
	}
	m.redisMisses.Inc()
}

// SetRedisUp reports whether the Redis connection is healthy.
func (m *Metrics) SetRedisUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.redisUp.Set(1)
	} else {
		m.redisUp.Set(0)
	}
}

// ObserveBusProbe records how long one round of bus liveness probes took.
func (m *Metrics) ObserveBusProbe(d time.Duration) {
	if m == nil {
		return
	}
	m.busProbe.Observe(d.Seconds())
}

// BusProbesFailed counts n bus liveness probes that failed or did not come back in time.
func (m *Metrics) BusProbesFailed(n int) {
	if m == nil {
		return
	}
	m.busProbeBad.Add(float64(n))
}

// SetHistory reports what the in-memory history holds and evicted is the running total of events its
// bounds evicted: the counter moves by what is new since the last call.
func (m *Metrics) SetHistory(bytes, streams int64, evicted uint64) {
	if m == nil {
		return
	}
	m.historyBytes.Set(float64(bytes))
	m.historyStreams.Set(float64(streams))
	m.mu.Lock()
	n := evicted - m.historySeen
	m.historySeen = evicted
	m.mu.Unlock()
	if n > 0 && n < 1<<63 { // a total that went down (a new budget) is not an eviction
		m.historyEvicted.Add(float64(n))
	}
}

// MCPSessionEvicted counts one MCP session evicted to make room, for reason r.
func (m *Metrics) MCPSessionEvicted(r SessionEviction) {
	if m == nil || r >= numSessionEvictions {
		return
	}
	m.mcpEvicted[r].Inc()
}

// StreamTokenExpired counts a stream closed at its token's expiry.
func (m *Metrics) StreamTokenExpired() {
	if m == nil {
		return
	}
	m.tokenExpired.Inc()
}

// StreamTokenRefresh counts one token refresh call, ok or refused.
func (m *Metrics) StreamTokenRefresh(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.tokenRefresh[1].Inc()
	} else {
		m.tokenRefresh[0].Inc()
	}
}

// ResumeWaited counts a resume that waited for a history read slot.
func (m *Metrics) ResumeWaited() {
	if m == nil {
		return
	}
	m.resumeWaits.Inc()
}

// ResumeRetried counts a resume's history read tried again after a failure.
func (m *Metrics) ResumeRetried() {
	if m == nil {
		return
	}
	m.resumeRetries.Inc()
}

// ResumeHistoryUnavailable counts a resume answered with reset history_unavailable.
func (m *Metrics) ResumeHistoryUnavailable() {
	if m == nil {
		return
	}
	m.resumeUnavailable.Inc()
}

// PublishExpired counts a publish Redis refused because it ran after its deadline.
func (m *Metrics) PublishExpired() {
	if m == nil {
		return
	}
	m.publishExpired.Inc()
}

// PublishOutcomeUnknown counts a publish whose connection was lost while it was in flight.
func (m *Metrics) PublishOutcomeUnknown() {
	if m == nil {
		return
	}
	m.publishUnknown.Inc()
}

// IdempotentPublish counts a publish with an Idempotency-Key seen before: replayed (answered with the
// first one's ID) or, when the key came with a different event, a conflict.
func (m *Metrics) IdempotentPublish(conflict bool) {
	if m == nil {
		return
	}
	if conflict {
		m.idemConflict.Inc()
	} else {
		m.idemReplayed.Inc()
	}
}
