package registry

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultDirectoryTTL is how long a directory entry (client on node) or a node's reported counts
// live without a refresh. Nodes refresh well within it (every TTL/3, say); when a node dies its
// entries vanish after at most one TTL, so no request is routed to it for longer than that.
const DefaultDirectoryTTL = 60 * time.Second

// Directory records which edge nodes hold a stream for which client, so any node can route an event
// for a client to the nodes that can deliver it, and how many streams each node holds, for
// GET /admin/connections across nodes.
//
// Entries are soft state with a TTL: a node registers a client when its stream opens, unregisters it
// when it closes, and periodically refreshes every client it still holds. A node that dies stops
// refreshing and its entries expire; after a directory outage or restart the next Refresh
// rebuilds them. Readers must therefore tolerate an entry naming a node that has just gone.
//
// Implementations are safe for concurrent use, take a context first and return wrapped errors
// (ErrUnavailable when a networked backend cannot be reached).
type Directory interface {
	// Register records that nodeID holds a stream for clientID, for one TTL.
	Register(ctx context.Context, clientID, nodeID string) error
	// Unregister forgets that nodeID holds clientID. Forgetting an unknown entry is not an error.
	Unregister(ctx context.Context, clientID, nodeID string) error
	// Lookup returns the nodes holding clientID (a client may be connected to several), sorted; none
	// is an empty result, not an error.
	Lookup(ctx context.Context, clientID string) ([]string, error)
	// Refresh re-arms the TTL of nodeID's entry for each of clientIDs, re-creating entries that
	// were lost. A networked backend does it in one pipelined round trip per batch.
	Refresh(ctx context.Context, nodeID string, clientIDs []string) error
	// ReportCounts replaces nodeID's stream counts (by kind, e.g. "sse", "topic"); they are
	// forgotten after ttl (the directory TTL when ttl <= 0) unless reported again.
	ReportCounts(ctx context.Context, nodeID string, counts map[string]int64, ttl time.Duration) error
	// NodeCounts returns the counts last reported by every live node: node ID -> kind -> count.
	NodeCounts(ctx context.Context) (map[string]map[string]int64, error)
}

// MemoryDirectory is the single-node Directory: the embedded default when there is no Redis.
type MemoryDirectory struct {
	ttl time.Duration

	mu      sync.Mutex
	clients map[string]map[string]time.Time // client -> node -> expiry
	nodes   map[string]nodeCounts
}

type nodeCounts struct {
	counts  map[string]int64
	expires time.Time
}

var _ Directory = (*MemoryDirectory)(nil)

// NewMemoryDirectory returns an empty MemoryDirectory whose entries live for ttl
// (DefaultDirectoryTTL when ttl <= 0).
func NewMemoryDirectory(ttl time.Duration) *MemoryDirectory {
	if ttl <= 0 {
		ttl = DefaultDirectoryTTL
	}
	return &MemoryDirectory{
		ttl:     ttl,
		clients: make(map[string]map[string]time.Time),
		nodes:   make(map[string]nodeCounts),
	}
}

// Register records clientID on nodeID for one TTL.
func (d *MemoryDirectory) Register(ctx context.Context, clientID, nodeID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory register %q: %w", clientID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.arm(clientID, nodeID, time.Now().Add(d.ttl))
	return nil
}

// arm sets one entry's expiry; d.mu must be held.
func (d *MemoryDirectory) arm(clientID, nodeID string, expires time.Time) {
	m := d.clients[clientID]
	if m == nil {
		m = make(map[string]time.Time, 1)
		d.clients[clientID] = m
	}
	m[nodeID] = expires
}

// Unregister forgets clientID on nodeID.
func (d *MemoryDirectory) Unregister(ctx context.Context, clientID, nodeID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory unregister %q: %w", clientID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.clients[clientID]; m != nil {
		delete(m, nodeID)
		if len(m) == 0 {
			delete(d.clients, clientID)
		}
	}
	return nil
}

// Lookup returns the nodes whose entry for clientID has not expired.
func (d *MemoryDirectory) Lookup(ctx context.Context, clientID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: directory lookup %q: %w", clientID, err)
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for node, exp := range d.clients[clientID] {
		if exp.After(now) {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Refresh re-arms nodeID's entries for clientIDs and drops every expired entry, so memory does not
// grow with clients of the past.
func (d *MemoryDirectory) Refresh(ctx context.Context, nodeID string, clientIDs []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory refresh: %w", err)
	}
	now := time.Now()
	expires := now.Add(d.ttl)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range clientIDs {
		d.arm(c, nodeID, expires)
	}
	for c, m := range d.clients {
		maps.DeleteFunc(m, func(_ string, exp time.Time) bool { return !exp.After(now) })
		if len(m) == 0 {
			delete(d.clients, c)
		}
	}
	return nil
}

// ReportCounts replaces nodeID's counts for ttl.
func (d *MemoryDirectory) ReportCounts(ctx context.Context, nodeID string, counts map[string]int64, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: directory report counts: %w", err)
	}
	if ttl <= 0 {
		ttl = d.ttl
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes[nodeID] = nodeCounts{counts: maps.Clone(counts), expires: time.Now().Add(ttl)}
	return nil
}

// NodeCounts returns copies of the counts of every node that reported within its ttl.
func (d *MemoryDirectory) NodeCounts(ctx context.Context) (map[string]map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: directory node counts: %w", err)
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]map[string]int64, len(d.nodes))
	for node, nc := range d.nodes {
		if !nc.expires.After(now) {
			delete(d.nodes, node)
			continue
		}
		c := maps.Clone(nc.counts)
		if c == nil {
			c = map[string]int64{}
		}
		out[node] = c
	}
	return out, nil
}
