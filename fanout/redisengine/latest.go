package redisengine

import (
	"context"

	"github.com/sseedge/sseedge/fanout"
)

// Latest returns the Redis ID of the newest entry of key's root history, "" when it holds none
// (fanout.Positioner): a multi-topic stream's cursor starts there for each root it reads, and
// Since(key, id) from it reads key's subtree after it.
func (n *namespace) Latest(ctx context.Context, key string) (string, error) {
	e := n.e
	root := fanout.Root(key)
	hkey := e.historyKey(e.partition(n.ns, root), n.ns, root)
	var id string
	err := e.call(ctx, "latest", "XREVRANGE", func(ctx context.Context) error {
		entries, err := e.client.Do(ctx, e.client.B().Xrevrange().Key(hkey).End("+").Start("-").Count(1).Build()).AsXRange()
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			id = entries[0].ID
		}
		return nil
	})
	return id, err
}
