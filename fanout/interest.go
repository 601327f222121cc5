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
