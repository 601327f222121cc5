package redisengine

import (
	"context"
	"time"

	"github.com/sseedge/sseedge/fanout"
)

// namespace is the engine as one hub sees it.
type namespace struct {
	e  *Engine
	ns string
}

func (n *namespace) Attach(local fanout.Local) {
	n.e.mu.Lock()
	n.e.hubs[n.ns] = local
	n.e.mu.Unlock()
}

// Watch is the hub beginning to watch root: queued, for the engine to subscribe to its channel.
func (n *namespace) Watch(root string) {
	n.e.interest.queue(change{ns: n.ns, root: root, watch: true, at: time.Now()})
}

// Unwatch is the hub's last stream of root gone: queued, to unsubscribe after the linger.
func (n *namespace) Unwatch(root string) {
	n.e.interest.queue(change{ns: n.ns, root: root, at: time.Now()})
}

// End has every node that holds key's streams end them: one message on the root's channel, nothing in
// history.
func (n *namespace) End(ctx context.Context, key string) error {
	e := n.e
	root := fanout.Root(key)
	p := e.partition(n.ns, root)
	msg := n.ns + "\n" + key + "\n\n" + fanout.EndEventName + "\n\n"
	return e.call(ctx, "end", "SPUBLISH", func(ctx context.Context) error {
		return e.client.Do(ctx, e.client.B().Spublish().Channel(e.rootChannel(p, n.ns, root)).Message(msg).Build()).Error()
	})
}

// Refresh has every node deliver grant to key's streams, as End does its end: nothing in history.
func (n *namespace) Refresh(ctx context.Context, key string, grant []byte) error {
	e := n.e
	root := fanout.Root(key)
	p := e.partition(n.ns, root)
	msg := n.ns + "\n" + key + "\n\n" + fanout.RefreshEventName + "\n\n" + string(grant)
	return e.call(ctx, "refresh", "SPUBLISH", func(ctx context.Context) error {
		return e.client.Do(ctx, e.client.B().Spublish().Channel(e.rootChannel(p, n.ns, root)).Message(msg).Build()).Error()
	})
}
