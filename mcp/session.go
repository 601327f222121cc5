package mcp

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sseedge/sseedge/metrics"
)

// Transport names the MCP HTTP transport a session was opened with. It is sent to the function as
// X-Mcp-Transport.
type Transport string

// The two MCP HTTP transports.
const (
	// TransportSSE is the HTTP+SSE transport of protocol 2024-11-05: GET /mcp/{fn}/sse holds the
	// stream, POST /mcp/{fn}/messages?sessionId= carries the client's messages.
	TransportSSE Transport = "sse"
	// TransportStreamable is the Streamable HTTP transport of protocol 2025-03-26 and later: one URL,
	// POST /mcp/{fn} (and GET for the listening stream, DELETE to end the session).
	TransportStreamable Transport = "streamable-http"
)

// Session is one MCP session held by the gateway. Functions are stateless: the session is the edge's,
// and every node that can read the SessionStore can serve any request of it.
type Session struct {
	// ID is 128 random bits in hex (NewSessionID); the client echoes it (sessionId query parameter or
	// Mcp-Session-Id header), so it must be unguessable.
	ID string `json:"id"`
	// Function is the name of the registered function the session talks to.
	Function  string    `json:"function"`
	Transport Transport `json:"transport"`
	// ProtocolVersion is the negotiated MCP protocol version when known (Streamable HTTP: from the
	// initialize result), else empty.
	ProtocolVersion string    `json:"protocol_version,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	// Source is where the session came from (SourceOf the client's address): the memory store bounds
	// the sessions of one source.
	Source string `json:"source,omitempty"`
}

// ErrSessionNotFound is wrapped by SessionStore errors about a session that does not exist (never
// created, deleted, or evicted). The gateway answers it with 404, which tells MCP clients to start a
// new session.
var ErrSessionNotFound = errors.New("mcp: session not found")

// ErrSessionExists is wrapped by Create for an ID already in use.
var ErrSessionExists = errors.New("mcp: session already exists")

// SessionStore keeps MCP sessions. Implementations must be safe for concurrent use and:
//   - take the request's context and return wrapped errors, since a networked backend (Redis) can
//     time out or fail: the gateway answers those with 503, and ErrSessionNotFound with 404;
//   - make Get cheap: every message of a session calls it;
//   - store sessions as given (they are small and never change after Create).
//
// Expiry is the backend's business: the memory store keeps sessions until they are deleted or
// evicted by its bound; a shared backend should give them a TTL refreshed by use.
type SessionStore interface {
	// Create stores s, or returns an error wrapping ErrSessionExists if s.ID is taken.
	Create(ctx context.Context, s Session) error
	// Get returns the session called id, or an error wrapping ErrSessionNotFound.
	Get(ctx context.Context, id string) (Session, error)
	// Delete ends the session called id, or returns an error wrapping ErrSessionNotFound.
	Delete(ctx context.Context, id string) error
}

// SessionRenewer is a SessionStore whose HTTP+SSE sessions expire after a lease unless renewed. A
// shared store implements it: an HTTP+SSE session ends with its stream, which deletes it, but a node
// that dies deletes nothing, and its sessions must not outlive it by more than a lease. The gateway
// renews the sessions of the streams it holds every third of the lease.
type SessionRenewer interface {
	SessionStore
	// Lease is how long an HTTP+SSE session lives without a renewal.
	Lease() time.Duration
	// Renew extends the lease of the sessions called ids; those that no longer exist stay gone.
	Renew(ctx context.Context, ids []string) error
}

// Defaults of a shared SessionRenewer (mcp/mcpredis).
const (
	// DefaultSessionTTL is how long a Streamable HTTP session lives after it is created.
	DefaultSessionTTL = 24 * time.Hour
	// DefaultSessionLease is how long an HTTP+SSE session outlives its last renewal.
	DefaultSessionLease = time.Minute
)

// NewSessionID returns 128 random bits in hex.
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// MemorySessionStore is the single-node SessionStore. Sessions have no TTL: they last until deleted or
// evicted, since an unauthenticated client can create them (initialize, GET /mcp/{fn}/sse) and nothing
// ends the legacy SSE sessions explicitly. Two bounds keep a flood from pushing out real sessions:
//
//   - MaxPerSource: creating a session beyond it for one source (Session.Source, an address) evicts one
//     of that source's own sessions, so one source cannot fill the store;
//   - Max: creating a session beyond it evicts one across the store.
//
// Either way the victim is the oldest session that never made a second request (a flood's sessions
// never need one), and only when there is none the least recently used session. The evicted session's
// client gets 404 and starts again; OnEvict hears of it. The zero value is ready to use and unbounded.
type MemorySessionStore struct {
	Max          int
	MaxPerSource int // 0: no bound per source; sessions without a Source are bounded by Max only
	// OnEvict, when set, is called for each session evicted to make room, after the store's lock is let
	// go and with the creating request's context (the gateway ends the session's stream and counts it).
	OnEvict func(ctx context.Context, s Session, r metrics.SessionEviction)

	mu       sync.Mutex
	byID     map[string]*memSession
	all      sessionLists
	bySource map[string]*sessionLists
}

// sessionLists orders sessions for eviction: idle (no request since the one that created them) by
// creation, used ones least recently used first.
type sessionLists struct{ idle, used list.List }

func (l *sessionLists) len() int { return l.idle.Len() + l.used.Len() }

// victim is the session to evict first.
func (l *sessionLists) victim() *memSession {
	if e := l.idle.Front(); e != nil {
		return e.Value.(*memSession)
	}
	return l.used.Front().Value.(*memSession)
}

// memSession is a stored session and its places in the store's lists and in its source's.
type memSession struct {
	s         Session
	used      bool
	all, mine *list.Element // mine is nil without a source
}

var _ SessionStore = (*MemorySessionStore)(nil)

// evicted is a session taken out to make room, reported to OnEvict once the lock is let go.
type evicted struct {
	s Session
	r metrics.SessionEviction
}

// Create stores s, first evicting to make room for it if its source or the store is full.
func (m *MemorySessionStore) Create(ctx context.Context, s Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mcp: create session: %w", err)
	}
	out, err := m.create(s)
	if m.OnEvict != nil {
		for _, e := range out {
			m.OnEvict(ctx, e.s, e.r)
		}
	}
	return err
}

func (m *MemorySessionStore) create(s Session) ([]evicted, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = make(map[string]*memSession)
		m.bySource = make(map[string]*sessionLists)
	}
	if _, ok := m.byID[s.ID]; ok {
		return nil, fmt.Errorf("mcp: create session %s: %w", s.ID, ErrSessionExists)
	}
	var out []evicted
	if mine := m.bySource[s.Source]; mine != nil && m.MaxPerSource > 0 {
		for mine.len() >= m.MaxPerSource {
			v := mine.victim()
			m.remove(v)
			out = append(out, evicted{v.s, metrics.EvictAddressLimit})
		}
	}
	for m.Max > 0 && len(m.byID) >= m.Max {
		v := m.all.victim()
		m.remove(v)
		out = append(out, evicted{v.s, metrics.EvictStoreFull})
	}
	ms := &memSession{s: s}
	ms.all = m.all.idle.PushBack(ms)
	if s.Source != "" {
		mine := m.bySource[s.Source]
		if mine == nil {
			mine = &sessionLists{}
			m.bySource[s.Source] = mine
		}
		ms.mine = mine.idle.PushBack(ms)
	}
	m.byID[s.ID] = ms
	return out, nil
}

// remove takes ms out of the store; m.mu is held.
func (m *MemorySessionStore) remove(ms *memSession) {
	delete(m.byID, ms.s.ID)
	if ms.used {
		m.all.used.Remove(ms.all)
	} else {
		m.all.idle.Remove(ms.all)
	}
	if ms.mine == nil {
		return
	}
	mine := m.bySource[ms.s.Source]
	if ms.used {
		mine.used.Remove(ms.mine)
	} else {
		mine.idle.Remove(ms.mine)
	}
	if mine.len() == 0 {
		delete(m.bySource, ms.s.Source)
	}
}

// Get returns the session called id. Every message of a session gets it, so this is where a session
// is seen to be used: it moves to the back of the eviction order.
func (m *MemorySessionStore) Get(ctx context.Context, id string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, fmt.Errorf("mcp: get session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.byID[id]
	if !ok {
		return Session{}, fmt.Errorf("mcp: get session %s: %w", id, ErrSessionNotFound)
	}
	mine := m.bySource[ms.s.Source]
	if ms.used {
		m.all.used.MoveToBack(ms.all)
		if ms.mine != nil {
			mine.used.MoveToBack(ms.mine)
		}
	} else {
		ms.used = true
		m.all.idle.Remove(ms.all)
		ms.all = m.all.used.PushBack(ms)
		if ms.mine != nil {
			mine.idle.Remove(ms.mine)
			ms.mine = mine.used.PushBack(ms)
		}
	}
	return ms.s, nil
}

// Delete removes the session called id.
func (m *MemorySessionStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mcp: delete session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.byID[id]
	if !ok {
		return fmt.Errorf("mcp: delete session %s: %w", id, ErrSessionNotFound)
	}
	m.remove(ms)
	return nil
}

// Len returns the number of sessions held.
func (m *MemorySessionStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

// SourceOf names the source of a client address for per-source bounds: an IPv4 address itself, an IPv6
// address by its /64, since one host or home is routinely handed a whole /64 and could otherwise
// count as billions of sources. An invalid address is the empty source, which has no bound of its own.
func SourceOf(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return ""
	case ip.Is4():
		return ip.String()
	}
	p, _ := ip.Prefix(64) // never fails for a valid IPv6 address
	return p.String()
}
