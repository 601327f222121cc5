package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sseedge/sseedge/internal/stateerr"
)

// ErrNotFound is wrapped by every Store error about a function that is not registered.
var ErrNotFound = errors.New("registry: function not found")

// ErrUnavailable is wrapped by every Store and Directory error caused by a networked backend being
// unreachable, too slow or not serving, as opposed to a missing function or a caller's cancelled
// context. Callers map it to 503. It is stateerr.ErrUnavailable (the same value as
// fanout.ErrUnavailable), which the Redis backends (registry/redisstore) wrap through redisx.Classify.
var ErrUnavailable = stateerr.ErrUnavailable

// Store keeps registered functions. Implementations must be safe for concurrent use and:
//   - take a context first and return wrapped errors (errors.Is(err, ErrNotFound) for an absent
//     name), since a networked backend can time out or fail;
//   - validate on Put (Function.Validate) so nothing invalid is ever stored;
//   - hand out copies (Function.Clone): callers may change what they get without touching a cache;
//   - make Get cheap: the invoke path calls it for every invocation. A Redis backend serves it from a
//     client-side cache invalidated by the server, so the steady state costs no round trip;
//   - return List sorted by name.
//
// The conformance tests in registry/registrytest hold every backend to this contract.
type Store interface {
	// Put creates or replaces the function named fn.Name.
	Put(ctx context.Context, fn Function) error
	// Get returns the function called name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Function, error)
	// List returns every function, sorted by name.
	List(ctx context.Context) ([]Function, error)
	// ListCached is List for reads that repeat (health probes, the status page): a store with a
	// client-side cache answers it from there, so it may be a moment behind a change made on another
	// node.
	ListCached(ctx context.Context) ([]Function, error)
	// Delete removes the function called name, or returns an error wrapping ErrNotFound.
	Delete(ctx context.Context, name string) error
}

// MemoryStore is the embedded, single-node Store. The zero value is ready to use.
type MemoryStore struct {
	mu  sync.RWMutex
	fns map[string]Function
}

var _ Store = (*MemoryStore)(nil)

// Put validates fn and stores a copy of it.
func (s *MemoryStore) Put(ctx context.Context, fn Function) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: put %q: %w", fn.Name, err)
	}
	if err := fn.Validate(); err != nil {
		return fmt.Errorf("registry: put %q: %w", fn.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = make(map[string]Function)
	}
	s.fns[fn.Name] = fn.Clone()
	return nil
}

// Get returns a copy of the function called name.
func (s *MemoryStore) Get(ctx context.Context, name string) (Function, error) {
	if err := ctx.Err(); err != nil {
		return Function{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	s.mu.RLock()
	fn, ok := s.fns[name]
	s.mu.RUnlock()
	if !ok {
		return Function{}, fmt.Errorf("registry: get %q: %w", name, ErrNotFound)
	}
	return fn.Clone(), nil
}

// ListCached is List: the memory store is its own cache.
func (s *MemoryStore) ListCached(ctx context.Context) ([]Function, error) { return s.List(ctx) }

// List returns copies of all functions sorted by name.
func (s *MemoryStore) List(ctx context.Context) ([]Function, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	s.mu.RLock()
	out := make([]Function, 0, len(s.fns))
	for _, name := range slices.Sorted(maps.Keys(s.fns)) {
		out = append(out, s.fns[name].Clone())
	}
	s.mu.RUnlock()
	return out, nil
}

// Delete removes the function called name.
func (s *MemoryStore) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: delete %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.fns[name]; !ok {
		return fmt.Errorf("registry: delete %q: %w", name, ErrNotFound)
	}
	delete(s.fns, name)
	return nil
}

// SortByName sorts functions by name in place; backends whose storage is unordered use it for List.
func SortByName(fns []Function) {
	slices.SortFunc(fns, func(a, b Function) int { return strings.Compare(a.Name, b.Name) })
}
