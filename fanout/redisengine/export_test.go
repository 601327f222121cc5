package redisengine

// HistoryKey is the Redis Stream that holds the history of root in namespace ns.
func (e *Engine) HistoryKey(ns, root string) string {
	return e.historyKey(e.partition(ns, root), ns, root)
}
