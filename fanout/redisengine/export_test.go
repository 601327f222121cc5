package redisengine

// HistoryKey is the Redis Stream that holds the history of root in namespace ns.
func (e *Engine) HistoryKey(ns, root string) string {
	return e.historyKey(e.partition(ns, root), ns, root)
}

// Cursors is how many roots the engine keeps a bus cursor for.
func (e *Engine) Cursors() int {
	e.gaps.mu.Lock()
	defer e.gaps.mu.Unlock()
	return len(e.gaps.roots)
}

// PubSubConnections is how many partitions have a pub/sub connection whose probe channel Redis
// confirmed.
func (e *Engine) PubSubConnections() int {
	n := 0
	for p := range e.cfg.Partitions {
		if e.interest.probing(p) != nil {
			n++
		}
	}
	return n
}
