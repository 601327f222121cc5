package mcp

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
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

// NewSessionID returns 128 random bits in hex.
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// MemorySessionStore is the single-node SessionStore. Sessions have no TTL; when Max is positive, creating
// a session beyond Max evicts the oldest one (its client gets 404 and starts again), so a node cannot
// be filled with sessions nobody ends (legacy SSE sessions are never deleted explicitly). The zero
// value is ready to use and unbounded.
type MemorySessionStore struct {
	Max int

	mu    sync.Mutex
	byID  map[string]*list.Element // of Session
	order list.List                // oldest first
}

var _ SessionStore = (*MemorySessionStore)(nil)

// Create stores s, evicting the oldest session if the store is full.
func (m *MemorySessionStore) Create(ctx context.Context, s Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mcp: create session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = make(map[string]*list.Element)
	}
	if _, ok := m.byID[s.ID]; ok {
		return fmt.Errorf("mcp: create session %s: %w", s.ID, ErrSessionExists)
	}
	for m.Max > 0 && m.order.Len() >= m.Max {
		oldest := m.order.Front()
		delete(m.byID, oldest.Value.(Session).ID)
		m.order.Remove(oldest)
	}
	m.byID[s.ID] = m.order.PushBack(s)
	return nil
}

// Get returns the session called id.
func (m *MemorySessionStore) Get(ctx context.Context, id string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, fmt.Errorf("mcp: get session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return Session{}, fmt.Errorf("mcp: get session %s: %w", id, ErrSessionNotFound)
	}
	return e.Value.(Session), nil
}

// Delete removes the session called id.
func (m *MemorySessionStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mcp: delete session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byID[id]
	if !ok {
		return fmt.Errorf("mcp: delete session %s: %w", id, ErrSessionNotFound)
	}
	delete(m.byID, id)
	m.order.Remove(e)
	return nil
}

// Len returns the number of sessions held.
func (m *MemorySessionStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}
