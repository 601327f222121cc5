package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/registry"
)

// DefaultRefreshBatch is how many clients one Refresh round trip carries.
const DefaultRefreshBatch = 1000

// DirectoryOption configures a Directory.
type DirectoryOption func(*Directory)

// WithDirectoryTTL sets how long entries live without a refresh (default registry.DefaultDirectoryTTL).
func WithDirectoryTTL(d time.Duration) DirectoryOption {
	return func(r *Directory) {
		if d > 0 {
			r.ttl = d
		}
	}
}

// WithDirectoryTimeout bounds each round trip (default DefaultTimeout).
func WithDirectoryTimeout(d time.Duration) DirectoryOption {
	return func(r *Directory) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithRefreshBatch sets how many clients one Refresh round trip carries (default
// DefaultRefreshBatch).
func WithRefreshBatch(n int) DirectoryOption {
	return func(r *Directory) {
		if n > 0 {
			r.batch = n
		}
	}
}

// Directory is the registry.Directory shared by every node of a deployment.
//
// Key layout (prefix "sseedge"):
//
//	sseedge:{c:<clientID>}:nodes   sorted set: member node ID, score expiry (Unix ms)
//	sseedge:{nodes}:node:<nodeID>  hash: kind -> count, expiring after the reported ttl
//	sseedge:{nodes}:index          sorted set: member node ID, score expiry of its counts
//
// Each client has its own key (and hash tag), so clients spread over the cluster and a Refresh
// pipeline fans out to every master in parallel. A member's score, not a Redis TTL, decides
// whether an entry is live, because one key holds the entries of several nodes with separate
// lifetimes; the key's own TTL (only ever raised) just makes Redis reclaim clients nobody refreshes.
// Expired members are pruned on Register. Expiry times come from the nodes' clocks, which are
// assumed to agree to much better than a TTL (NTP). The {nodes} keys share one slot so a report
// replaces a node's counts atomically (MULTI/EXEC). IDs are used verbatim; an ID containing '}'
// still maps to one key consistently, since each operation on a client touches only its key.
type Directory struct {
	client  rueidis.Client
	prefix  string
	ttl     time.Duration
	timeout time.Duration
	batch   int
}

var _ registry.Directory = (*Directory)(nil)

// NewDirectory returns a Directory kept in Redis under prefix ("" means DefaultPrefix).
func NewDirectory(client rueidis.Client, prefix string, opts ...DirectoryOption) *Directory {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	d := &Directory{
		client:  client,
		prefix:  prefix,
		ttl:     registry.DefaultDirectoryTTL,
		timeout: DefaultTimeout,
		batch:   DefaultRefreshBatch,
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

func (d *Directory) clientKey(clientID string) string {
	return d.prefix + ":{c:" + clientID + "}:nodes"
}

func (d *Directory) nodeKey(nodeID string) string { return d.prefix + ":{nodes}:node:" + nodeID }

func (d *Directory) indexKey() string { return d.prefix + ":{nodes}:index" }

// arm appends the commands that (re)arm nodeID's entry in key until expires: set the member's
// score, then give the key a TTL if it has none and raise it if it is shorter, so one node's
// shorter TTL never cuts another's entry short.
func (d *Directory) arm(cmds rueidis.Commands, key, nodeID string, expires time.Time) rueidis.Commands {
	ms := d.ttl.Milliseconds()
	return append(cmds,
		d.client.B().Zadd().Key(key).ScoreMember().ScoreMember(float64(expires.UnixMilli()), nodeID).Build(),
		d.client.B().Pexpire().Key(key).Milliseconds(ms).Nx().Build(),
		d.client.B().Pexpire().Key(key).Milliseconds(ms).Gt().Build(),
	)
}

// Register records clientID on nodeID for one TTL and prunes the client's expired entries, in
// one round trip.
func (d *Directory) Register(ctx context.Context, clientID, nodeID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory register %q: %w", clientID, err)
	}
	octx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	now := time.Now()
	key := d.clientKey(clientID)
	cmds := rueidis.Commands{
		d.client.B().Zremrangebyscore().Key(key).Min("-inf").Max(strconv.FormatInt(now.UnixMilli(), 10)).Build(),
	}
	cmds = d.arm(cmds, key, nodeID, now.Add(d.ttl))
	if err := firstError(d.client.DoMulti(octx, cmds...)); err != nil {
		return dirFail(ctx, "register "+strconv.Quote(clientID), err)
	}
	return nil
}

// Unregister removes clientID's entry for nodeID.
func (d *Directory) Unregister(ctx context.Context, clientID, nodeID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory unregister %q: %w", clientID, err)
	}
	octx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := d.client.Do(octx, d.client.B().Zrem().Key(d.clientKey(clientID)).Member(nodeID).Build()).Error(); err != nil {
		return dirFail(ctx, "unregister "+strconv.Quote(clientID), err)
	}
	return nil
}

// Lookup returns the nodes whose entry for clientID has not expired, sorted.
func (d *Directory) Lookup(ctx context.Context, clientID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: directory lookup %q: %w", clientID, err)
	}
	octx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	live := "(" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	nodes, err := d.client.Do(octx, d.client.B().Zrange().Key(d.clientKey(clientID)).Min(live).Max("+inf").Byscore().Build()).AsStrSlice()
	if err != nil {
		return nil, dirFail(ctx, "lookup "+strconv.Quote(clientID), err)
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	slices.Sort(nodes)
	return nodes, nil
}

// Refresh re-arms nodeID's entries for clientIDs, one pipelined round trip (DoMulti) per batch
// of clients; on a cluster each batch goes to every master concurrently.
func (d *Directory) Refresh(ctx context.Context, nodeID string, clientIDs []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory refresh: %w", err)
	}
	cmds := make(rueidis.Commands, 0, 3*min(len(clientIDs), d.batch))
	for batch := range slices.Chunk(clientIDs, d.batch) {
		expires := time.Now().Add(d.ttl)
		cmds = cmds[:0]
		for _, c := range batch {
			cmds = d.arm(cmds, d.clientKey(c), nodeID, expires)
		}
		octx, cancel := context.WithTimeout(ctx, d.timeout)
		err := firstError(d.client.DoMulti(octx, cmds...))
		cancel()
		if err != nil {
			return dirFail(ctx, fmt.Sprintf("refresh %d clients of node %q", len(clientIDs), nodeID), err)
		}
	}
	return nil
}

// ReportCounts atomically replaces nodeID's counts and keeps them for ttl (the directory TTL when
// ttl <= 0).
func (d *Directory) ReportCounts(ctx context.Context, nodeID string, counts map[string]int64, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory report counts: %w", err)
	}
	if ttl <= 0 {
		ttl = d.ttl
	}
	octx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	now := time.Now()
	key, index := d.nodeKey(nodeID), d.indexKey()
	b := d.client.B()
	cmds := rueidis.Commands{b.Multi().Build(), b.Del().Key(key).Build()}
	if len(counts) > 0 {
		hset := b.Hset().Key(key).FieldValue()
		for kind, n := range counts {
			hset = hset.FieldValue(kind, strconv.FormatInt(n, 10))
		}
		cmds = append(cmds, hset.Build(), b.Pexpire().Key(key).Milliseconds(ttl.Milliseconds()).Build())
	}
	cmds = append(cmds,
		b.Zremrangebyscore().Key(index).Min("-inf").Max(strconv.FormatInt(now.UnixMilli(), 10)).Build(),
		b.Zadd().Key(index).ScoreMember().ScoreMember(float64(now.Add(ttl).UnixMilli()), nodeID).Build(),
		b.Exec().Build(),
	)
	if err := firstError(d.client.DoMulti(octx, cmds...)); err != nil {
		return dirFail(ctx, "report counts of node "+strconv.Quote(nodeID), err)
	}
	return nil
}

// NodeCounts returns the counts of every node whose report has not expired, in two round trips
// (the live nodes, then all their counts pipelined).
func (d *Directory) NodeCounts(ctx context.Context) (map[string]map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: directory node counts: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	live := "(" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	nodes, err := d.client.Do(octx, d.client.B().Zrange().Key(d.indexKey()).Min(live).Max("+inf").Byscore().Build()).AsStrSlice()
	if err != nil {
		return nil, dirFail(ctx, "node counts", err)
	}
	out := make(map[string]map[string]int64, len(nodes))
	if len(nodes) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, len(nodes))
	for i, n := range nodes {
		cmds[i] = d.client.B().Hgetall().Key(d.nodeKey(n)).Build()
	}
	for i, r := range d.client.DoMulti(octx, cmds...) {
		counts, err := r.AsIntMap()
		if err != nil {
			return nil, dirFail(ctx, "node counts", err)
		}
		out[nodes[i]] = counts // a node that reported no counts has an empty hash: still listed
	}
	return out, nil
}

// firstError returns the first error among pipelined results.
func firstError(results []rueidis.RedisResult) error {
	for _, r := range results {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// dirFail wraps err from a directory operation through redisx.Classify: the caller's own
// cancellation as it is, registry.ErrUnavailable when Redis is away.
func dirFail(ctx context.Context, what string, err error) error {
	return fmt.Errorf("registry: directory %s: %w", what, redisx.Classify(ctx, err))
}
