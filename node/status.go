package node

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/transport"
)

// ReservedTopicPrefix holds the node's own topics (its status stream). Only the node publishes there,
// and only an admin may read them.
const ReservedTopicPrefix = "/_sseedge"

// Reserved reports whether a canonical topic is the node's own.
func Reserved(topic string) bool {
	return topic == ReservedTopicPrefix || strings.HasPrefix(topic, ReservedTopicPrefix+"/")
}

// StatusTopic is the node-local topic on which the node publishes a status snapshot every second, for
// the status page (GET /admin/) and for anyone with the admin token who wants to watch a node live.
const StatusTopic = ReservedTopicPrefix + "/status"

// StatusEvent is the event name of the snapshots on StatusTopic.
const StatusEvent = "status"

// statusInterval is the period of the status snapshots; the page computes rates from their deltas.
const statusInterval = time.Second

// StatusFunction is one entry of the functions list of the status snapshots (Config.StatusFunctions);
// the status page shows each with its breaker state and its invoke rate (from the deltas of
// Invocations). Keep the list short (say the 50 busiest): it goes out every second to every viewer.
type StatusFunction struct {
	Name        string `json:"name"`
	Breaker     string `json:"breaker"`            // "closed", "open" or "half-open" (the worst endpoint's)
	Invocations uint64 `json:"invocations"`        // invocations since start, a counter
	Failures    uint64 `json:"failures,omitempty"` // failed invocations since start, a counter
}

// statusSnapshot is one event on StatusTopic. Counters are totals since start; the page turns their
// deltas into rates, so a snapshot stays small and a missed one loses nothing.
type statusSnapshot struct {
	NodeID        string       `json:"node_id"`
	Time          int64        `json:"t"`       // Unix ms
	Started       int64        `json:"started"` // Unix ms
	Draining      bool         `json:"draining,omitempty"`
	Conns         statusConns  `json:"conns"`
	Opened        uint64       `json:"opened"`
	Published     uint64       `json:"published"`
	BytesSent     uint64       `json:"bytes_sent"`
	FramesSent    uint64       `json:"frames_sent"`
	Heartbeats    uint64       `json:"heartbeats"`
	SlowConsumers uint64       `json:"slow_consumers"`
	Extra         *statusExtra `json:"extra,omitempty"`
}

type statusConns struct {
	SSE   int64 `json:"sse"`
	Topic int64 `json:"topic"`
}

type statusExtra struct {
	Functions []StatusFunction `json:"functions"`
}

// statusLoop publishes a snapshot to StatusTopic every statusInterval until Close.
func (n *Node) statusLoop() {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.publishStatus(now)
		}
	}
}

// publishStatus publishes one snapshot. With no topic stream open nobody can be listening, and it
// skips the work.
func (n *Node) publishStatus(now time.Time) {
	st := n.TransportStats()
	if st.Draining || st.TopicStreams == 0 {
		return
	}
	snap := statusSnapshot{
		NodeID:        n.cfg.NodeID,
		Time:          now.UnixMilli(),
		Started:       n.started.UnixMilli(),
		Conns:         statusConns{SSE: st.ClientStreams, Topic: st.TopicStreams},
		Opened:        st.Opened,
		Published:     n.published.Load(),
		BytesSent:     st.BytesSent,
		FramesSent:    st.FramesSent,
		Heartbeats:    st.HeartbeatFrames,
		SlowConsumers: st.SlowConsumers,
	}
	if fns := n.statusFunctions(); fns != nil {
		snap.Extra = &statusExtra{Functions: fns}
	}
	data, err := json.Marshal(snap)
	if err != nil { // a snapshot holds only strings and numbers
		n.log.Warn("status snapshot not encodable", "err", err)
		return
	}
	if _, _, err := n.hubs[transport.Topic].PublishLocal(StatusTopic, fanout.Event{Name: StatusEvent, Data: data}); err != nil {
		n.log.Warn("status snapshot not published", "err", err)
	}
}

// statusFunctions calls Config.StatusFunctions with a deadline shorter than the snapshot period; a panic
// in it is logged, not fatal.
func (n *Node) statusFunctions() (fns []StatusFunction) {
	if n.cfg.StatusFunctions == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			n.log.Error("StatusFunctions panicked", "panic", v)
			fns = nil
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), statusInterval/2)
	defer cancel()
	return n.cfg.StatusFunctions(ctx)
}
