package edge

// observeHistory reports what the node's history holds in memory and what its bounds evicted; the
// heartbeat tick calls it after the sweep, so it costs publishes nothing.
func (s *Server) observeHistory() {
	st := s.cfg.History.Budget.Stats()
	s.cfg.Metrics.SetHistory(st.Bytes, st.Streams, st.Evicted)
}
