package node

import (
	"context"
	"time"

	"github.com/sseedge/sseedge/transport"
)

// Directory records which node holds which client stream and every node's stream counts, so that a
// cluster can answer for all its nodes. The registry package has a Redis implementation.
type Directory interface {
	// Refresh records that nodeID holds clientIDs, re-arming their expiry in one batch.
	Refresh(ctx context.Context, nodeID string, clientIDs []string) error
	// ReportCounts records nodeID's stream counts, expiring after ttl unless reported again.
	ReportCounts(ctx context.Context, nodeID string, counts map[string]int64, ttl time.Duration) error
	// NodeCounts returns every live node's counts by stream kind.
	NodeCounts(ctx context.Context) (map[string]map[string]int64, error)
}

// directoryLoop refreshes this node's entries in the directory every interval; entries of a node that
// stops refreshing (it died) expire after three intervals.
func (n *Node) directoryLoop() {
	interval := n.cfg.DirectoryInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n.refreshDirectory(3 * interval)
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) refreshDirectory(ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
	defer cancel()
	var ids []string
	n.hubs[transport.Client].EachSubscribed(func(key string) { ids = append(ids, key) })
	st := n.TransportStats()
	counts := map[string]int64{"sse": st.ClientStreams, "topic": st.TopicStreams}
	if err := n.cfg.Directory.Refresh(ctx, n.cfg.NodeID, ids); err != nil {
		n.log.Warn("directory refresh failed", "err", err)
		return
	}
	if err := n.cfg.Directory.ReportCounts(ctx, n.cfg.NodeID, counts, ttl); err != nil {
		n.log.Warn("directory counts failed", "err", err)
	}
}
