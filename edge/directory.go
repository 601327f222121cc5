package edge

import (
	"context"
	"time"
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
func (s *Server) directoryLoop() {
	interval := s.cfg.DirectoryInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.refreshDirectory(3 * interval)
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *Server) refreshDirectory(ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
	defer cancel()
	var ids []string
	s.conns.each(func(st *stream) {
		if st.kind == kindClient {
			ids = append(ids, st.key)
		}
	})
	st := s.Stats()
	counts := map[string]int64{"sse": st.ClientStreams, "topic": st.TopicStreams}
	if err := s.cfg.Directory.Refresh(ctx, s.cfg.NodeID, ids); err != nil {
		s.log.Warn("directory refresh failed", "err", err)
		return
	}
	if err := s.cfg.Directory.ReportCounts(ctx, s.cfg.NodeID, counts, ttl); err != nil {
		s.log.Warn("directory counts failed", "err", err)
	}
}
