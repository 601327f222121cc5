package metrics

import "time"

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

// PublishExpired counts n events Redis refused to publish because the call ran after its deadline.
func (m *Metrics) PublishExpired(n int) {
	if m == nil {
		return
	}
	m.publishExpired.Add(float64(n))
}

// PublishOutcomeUnknown counts n events whose publish lost its connection while it was in flight.
func (m *Metrics) PublishOutcomeUnknown(n int) {
	if m == nil {
		return
	}
	m.publishUnknown.Add(float64(n))
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
