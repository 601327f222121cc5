package fanout

// watch counts sc among its root's watchers and tells an Interested engine when the root gains its
// first. The caller holds the shard lock.
func (h *Hub) watch(sc *Subscription, key string) {
	sc.root.watchers++
	if sc.root.watchers != 1 {
		return
	}
	if in, ok := h.cfg.Engine.(Interested); ok {
		sc.root.rootKey = Root(key)
		in.Watch(sc.root.rootKey)
	}
}

// unwatch undoes watch, telling an Interested engine when the root loses its last watcher. The caller
// holds the shard lock.
func (h *Hub) unwatch(sc *Subscription) {
	sc.root.watchers--
	if sc.root.watchers != 0 {
		return
	}
	if in, ok := h.cfg.Engine.(Interested); ok && sc.root.rootKey != "" {
		in.Unwatch(sc.root.rootKey)
	}
}

// DeliverOpening queues f to the subscribers of key and its ancestors: as it is to those that did not
// resume, and to those that did as a live frame, held during their replay and dropped when the replay
// had it (see Opener).
func (l local) DeliverOpening(key string, f *Frame) {
	h := l.h
	s := h.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ok := key, true; ok; k, ok = parent(k) {
		n := s.nodes[k]
		if n == nil {
			continue
		}
		for _, sub := range n.subs {
			switch {
			case !sub.resumed:
				sub.sub.Send(f)
			case sub.held != nil:
				sub.held.add(f)
			default:
				sub.sendLive(f)
			}
		}
	}
}
