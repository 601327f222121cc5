package metrics

import "github.com/prometheus/client_golang/prometheus"

// gripMetrics are the series of GRIP: what functions answered on /grip/{fn}/…, and what GRIP publishes
// carried. Their outcome labels are codes chosen by the edge (held, proxied, a grip_* or an invoker
// code), never values from a request.
type gripMetrics struct {
	answers  *prometheus.CounterVec // outcome
	items    *prometheus.CounterVec // action
	refusals *prometheus.CounterVec // code
	// keepAlives counts held streams' own keep-alives (Grip-Keep-Alive) queued in place of heartbeats.
	keepAlives prometheus.Counter
}

func newGripMetrics(reg prometheus.Registerer) *gripMetrics {
	g := &gripMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grip_requests_total",
			Help: "Requests to GRIP functions (/grip/{fn}/…), by outcome: held (a stream), proxied (the answer passed through), or the code of the failure (grip_malformed, grip_unknown_instruction, grip_too_many, timeout, circuit_open, …).",
		}, []string{"outcome"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grip_publish_items_total",
			Help: "Items of GRIP publishes (POST /publish/) applied, by action (send, close).",
		}, []string{"action"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grip_publish_refused_total",
			Help: "GRIP publishes (POST /publish/) refused, by code (grip_unauthorized, grip_malformed, state_unavailable, …).",
		}, []string{"code"}),
		keepAlives: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grip_keepalives_total",
			Help: "Keep-alives of held GRIP streams (the function's Grip-Keep-Alive content) queued in place of the edge's heartbeat.",
		}),
	}
	if reg != nil {
		reg.MustRegister(g.answers, g.items, g.refusals, g.keepAlives)
	}
	return g
}

// gripOutcomes are the outcome values of sseedge_grip_requests_total: held, proxied, and the codes of
// the failures (grip.Code values, invoker.Code values, grip_sign_failed). Anything else counts as
// "error", so the label stays a closed set. A function, not a variable: nobody can change it.
func gripOutcomes() []string {
	return []string{"held", "proxied", "stream_refused", "error",
		"grip_malformed", "grip_unknown_instruction", "grip_unsupported", "grip_hold_response_unsupported",
		"grip_bad_channel", "grip_too_many", "grip_too_large", "grip_sign_failed",
		"circuit_open", "timeout", "upstream_error", "no_healthy_endpoint", "response_too_large", "canceled", "invalid_function"}
}

// gripPublishCodes are the code values of sseedge_grip_publish_refused_total ("error" for any other).
func gripPublishCodes() []string {
	return []string{"error", "grip_unauthorized", "grip_malformed", "grip_unsupported", "grip_bad_channel", "grip_too_many",
		"grip_too_large", "reserved_topic", "state_unavailable", "event_too_large", "bad_event"}
}

// closedValue is v when known lists it, else "error".
func closedValue(v string, known []string) string {
	for _, k := range known {
		if k == v {
			return v
		}
	}
	return "error"
}

// GripRequest counts one request to a GRIP function by its outcome: "held", "proxied", or the code of
// its failure.
func (m *Metrics) GripRequest(outcome string) {
	if m == nil {
		return
	}
	m.grip.answers.WithLabelValues(closedValue(outcome, gripOutcomes())).Inc()
}

// GripItems counts n applied items of GRIP publishes with action ("send" or "close").
func (m *Metrics) GripItems(action string, n int) {
	if m == nil || n == 0 {
		return
	}
	if action != "close" {
		action = "send"
	}
	m.grip.items.WithLabelValues(action).Add(float64(n))
}

// GripPublishRefused counts a GRIP publish refused with code.
func (m *Metrics) GripPublishRefused(code string) {
	if m == nil {
		return
	}
	m.grip.refusals.WithLabelValues(closedValue(code, gripPublishCodes())).Inc()
}

// KeepAlivesSent counts n keep-alives of held streams queued by one heartbeat tick.
func (m *Metrics) KeepAlivesSent(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.grip.keepAlives.Add(float64(n))
}
