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
	topics *topicMetrics // multi-topic streams (topics.go)
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

	grip *gripMetrics // metrics/grip.go

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
		topics:        newTopicMetrics(reg),
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

	m.grip = newGripMetrics(reg)
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
