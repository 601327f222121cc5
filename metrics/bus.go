package metrics

import "github.com/prometheus/client_golang/prometheus"

// busMetrics are the collectors of interest-routed delivery between nodes: what the bus brings a node,
// how much of it nothing local reads, and what keeping the per-root subscriptions costs Redis.
type busMetrics struct {
	received     prometheus.Counter
	unwanted     prometheus.Counter
	held         prometheus.Gauge
	subscribes   prometheus.Counter
	unsubscribes prometheus.Counter
}

// newBusMetrics builds the bus collectors and registers them with reg when it is not nil.
func newBusMetrics(reg prometheus.Registerer) *busMetrics {
	b := &busMetrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "bus_messages_received_total",
			Help: "Event messages (events, ends, refreshes) this node received on the Redis bus; probes are not counted.",
		}),
		unwanted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "bus_messages_unwanted_total",
			Help: "Bus event messages received while no local stream read their root (a subscription lingering after its last stream left).",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "bus_subscriptions",
			Help: "Per-root bus channels this node is subscribed to (or subscribing), lingering ones included.",
		}),
		subscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "bus_subscribe_commands_total",
			Help: "SSUBSCRIBE commands sent for per-root bus channels, renewals after a reconnect included.",
		}),
		unsubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "bus_unsubscribe_commands_total",
			Help: "SUNSUBSCRIBE commands sent for per-root bus channels whose last stream left more than the linger ago.",
		}),
	}
	if reg != nil {
		reg.MustRegister(b.received, b.unwanted, b.held, b.subscribes, b.unsubscribes)
	}
	return b
}

// BusReceived counts one event message received on the bus, and whether nothing local read its root.
func (m *Metrics) BusReceived(unwanted bool) {
	if m == nil || m.bus == nil {
		return
	}
	m.bus.received.Inc()
	if unwanted {
		m.bus.unwanted.Inc()
	}
}

// BusSubscriptions sets how many per-root bus channels the node holds.
func (m *Metrics) BusSubscriptions(n int) {
	if m == nil || m.bus == nil {
		return
	}
	m.bus.held.Set(float64(n))
}

// BusCommands counts n SSUBSCRIBE and u SUNSUBSCRIBE commands sent for per-root channels.
func (m *Metrics) BusCommands(n, u int) {
	if m == nil || m.bus == nil {
		return
	}
	m.bus.subscribes.Add(float64(n))
	m.bus.unsubscribes.Add(float64(u))
}
