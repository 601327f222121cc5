package metrics

import "github.com/prometheus/client_golang/prometheus"

// topicMetrics are the collectors of multi-topic streams (issue 13): their subscriptions, resets per
// topic, server-side changes and failures.
type topicMetrics struct {
	subscriptions  prometheus.Counter // topic subscriptions made by multi-topic streams
	resets         prometheus.Counter // resets naming one topic of a multi-topic stream
	changes        *prometheus.CounterVec
	changeApplied  [2]prometheus.Counter // ok=false, ok=true: server-side changes requested
	positionFailed prometheus.Counter
	changeFailed   prometheus.Counter
	badCursor      prometheus.Counter
	storeFailed    prometheus.Counter
}

func newTopicMetrics(reg prometheus.Registerer) *topicMetrics {
	t := &topicMetrics{
		subscriptions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_topic_subscriptions_total",
			Help: "Topic subscriptions made by multi-topic streams (one per topic, at open and by server-side subscribes)."}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_topic_resets_total",
			Help: "Resets sent by multi-topic streams, each naming one topic whose position was lost or absent."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "client_subscription_changes_total",
			Help: "Server-side subscription changes requested (POST/DELETE /clients/{id}/subscriptions), by outcome (ok: sent to the nodes, refused)."}, []string{"outcome"}),
		positionFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_topic_position_failures_total",
			Help: "Subscriptions of multi-topic streams whose starting position could not be read (they start live, with a reset)."}),
		changeFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "client_subscription_change_failures_total",
			Help: "Server-side subscription changes that could not be sent to the client's nodes."}),
		badCursor: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_bad_cursors_total",
			Help: "Last-Event-IDs of multi-topic streams that were not a cursor of theirs (each topic then resets)."}),
		storeFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "client_subscription_reads_failed_total",
			Help: "Client streams opened without their stored server-side subscriptions, the store (Redis) being unavailable: they read their URL's topics only."}),
	}
	t.changeApplied[0] = t.changes.WithLabelValues("refused")
	t.changeApplied[1] = t.changes.WithLabelValues("ok")
	if reg == nil { // New without a registry: collectors that count but are not exported
		return t
	}
	reg.MustRegister(t.subscriptions, t.resets, t.changes, t.positionFailed, t.changeFailed, t.badCursor, t.storeFailed)
	return t
}

// TopicSubscribed counts n topic subscriptions of multi-topic streams.
func (m *Metrics) TopicSubscribed(n int) {
	if m == nil {
		return
	}
	m.topics.subscriptions.Add(float64(n))
}

// TopicReset counts a reset naming one topic of a multi-topic stream.
func (m *Metrics) TopicReset() {
	if m == nil {
		return
	}
	m.topics.resets.Inc()
}

// TopicPositionFailed counts a subscription whose starting position could not be read.
func (m *Metrics) TopicPositionFailed() {
	if m == nil {
		return
	}
	m.topics.positionFailed.Inc()
}

// TopicSubsChangeFailed counts a server-side subscription change that could not be sent.
func (m *Metrics) TopicSubsChangeFailed() {
	if m == nil {
		return
	}
	m.topics.changeFailed.Inc()
}

// ClientSubscriptionChange counts a server-side subscription change request, sent or refused.
func (m *Metrics) ClientSubscriptionChange(sent bool) {
	if m == nil {
		return
	}
	if sent {
		m.topics.changeApplied[1].Inc()
	} else {
		m.topics.changeApplied[0].Inc()
	}
}

// BadCursor counts a Last-Event-ID of a multi-topic stream that was not one of its cursors.
func (m *Metrics) BadCursor() {
	if m == nil {
		return
	}
	m.topics.badCursor.Inc()
}

// SubscriptionReadFailed counts a client stream opened without its stored server-side subscriptions,
// the store being unavailable.
func (m *Metrics) SubscriptionReadFailed() {
	if m == nil {
		return
	}
	m.topics.storeFailed.Inc()
}
