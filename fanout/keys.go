package fanout

// EachSubscribed calls fn with every key that has a subscriber on this node, one lock shard at a time
// (fn must not call the hub). The node's directory refresh lists the clients it holds with it, so a held
// stream costs no entry of its own in a second index.
func (h *Hub) EachSubscribed(fn func(key string)) {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for k, n := range s.nodes {
			if len(n.subs) > 0 {
				fn(k)
			}
		}
		s.mu.Unlock()
	}
}
