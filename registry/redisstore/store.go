// Package redisstore keeps registry's function store and client directory in Redis, so that every node
// of a deployment shares them: Store (functions, read through rueidis client-side caching) and
// Directory (which node holds which client, and each node's stream counts). Every error caused by
// Redis being away wraps registry.ErrUnavailable, classified by internal/redisx; give both a client
// instrumented by redisx.Instrumentation.Client so their calls are traced and timed.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sseedge/sseedge/internal/redisx"
	"github.com/sseedge/sseedge/registry"
)

// Defaults of the Redis backends.
const (
	// DefaultPrefix starts every key unless New is given another prefix.
	DefaultPrefix = "sseedge"
	// DefaultTimeout bounds each Redis operation, so even a hung server surfaces as
	// registry.ErrUnavailable within about a second instead of blocking the caller.
	DefaultTimeout = time.Second
	// DefaultCacheTTL is how long a client-side cached function may live. Freshness does not depend
	// on it: the server invalidates a cached key as soon as any node changes it. It only bounds
	// memory held for functions nobody asks for any more.
	DefaultCacheTTL = time.Hour
)

// NewClient connects to Redis through the node's client factory (internal/redisx): one address is a
// standalone server (or any node of a cluster); several are nodes of one Redis Cluster. Client-side
// caching is on (RESP3 tracking, opt-in per command), which Store relies on.
func NewClient(addrs []string, password string) (rueidis.Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("redisstore: no address")
	}
	c, err := redisx.NewClient(redisx.Config{Addr: strings.Join(addrs, ","), Password: password}, nil)
	if err != nil {
		return nil, fmt.Errorf("redisstore: connect to redis %v: %w", addrs, redisx.Classify(nil, err))
	}
	return c, nil
}

// CacheStats counts Get lookups answered from the client-side cache (Hits) and those that needed a
// round trip to Redis (Misses).
type CacheStats struct {
	Hits, Misses uint64
}

// Option configures a Store.
type Option func(*Store)

// WithTimeout bounds each operation (default DefaultTimeout). A shorter deadline in the caller's
// context still wins.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithCacheTTL sets the client-side cache TTL (default DefaultCacheTTL).
func WithCacheTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.cacheTTL = d
		}
	}
}

// WithOnCacheHit calls fn after every Get that Redis or the cache answered (found or not) with
// whether it was served from the client-side cache, so metrics can be wired without this package
// knowing about them. Failed Gets are not counted.
// fn must be fast and safe for concurrent use.
func WithOnCacheHit(fn func(hit bool)) Option {
	return func(s *Store) { s.onCacheHit = fn }
}

// Store is the registry.Store shared by every node of a deployment.
//
// Key layout (prefix "sseedge"):
//
//	sseedge:{fn}:<name>   string, the function's JSON
//	sseedge:{fn}:_names   set of all names, for List ("_" cannot start a name, so no clash)
//
// One key per function makes invalidation precise: changing one function evicts only that
// function from the other nodes' caches. The shared {fn} hash tag keeps every key in one cluster
// slot, so Put and Delete update a function and the index atomically in one Lua script.
//
// Get reads through rueidis client-side caching: the first Get of a name on a node costs one round
// trip, later ones none, until any node changes that name and Redis pushes an invalidation to every
// node that cached it. List always reads Redis; ListCached reads through the cache too. Writes wait
// until this node's cache has caught up (see settle), so a Get after a Put on the same node never sees
// the old value.
type Store struct {
	client     rueidis.Client
	fnPrefix   string // "<prefix>:{fn}:"
	namesKey   string
	timeout    time.Duration
	cacheTTL   time.Duration
	onCacheHit func(hit bool)
	putScript  *rueidis.Lua
	delScript  *rueidis.Lua
	hits       atomic.Uint64
	misses     atomic.Uint64
	decoded    sync.Map // name -> *decodedFunction: skips JSON decoding when the cached bytes are unchanged
}

var _ registry.Store = (*Store)(nil)

// decodedFunction is the last JSON seen for a name and the registry.Function it decodes to.
type decodedFunction struct {
	raw string
	fn  registry.Function
}

// Lua scripts, so a function and the name index never disagree.
const (
	putLua = `redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1`
	deleteLua = `if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`
)

// New returns a Store kept in Redis under prefix ("" means DefaultPrefix), read through client's
// client-side cache. The prefix must not contain '{' or '}', which would change the cluster hash tag;
// New panics if it does, as that is a programming error.
func New(client rueidis.Client, prefix string, opts ...Option) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("redisstore: prefix %q contains a brace", prefix))
	}
	s := &Store{
		client:    client,
		fnPrefix:  prefix + ":{fn}:",
		namesKey:  prefix + ":{fn}:_names",
		timeout:   DefaultTimeout,
		cacheTTL:  DefaultCacheTTL,
		putScript: rueidis.NewLuaScript(putLua),
		delScript: rueidis.NewLuaScript(deleteLua),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Stats returns the Get cache counters since the store was made.
func (s *Store) Stats() CacheStats {
	return CacheStats{Hits: s.hits.Load(), Misses: s.misses.Load()}
}

// Put validates fn and stores it, replacing any function of the same name on every node.
func (s *Store) Put(ctx context.Context, fn registry.Function) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: put %q: %w", fn.Name, err)
	}
	if err := fn.Validate(); err != nil {
		return fmt.Errorf("registry: put %q: %w", fn.Name, err)
	}
	raw, err := json.Marshal(fn)
	if err != nil {
		return fmt.Errorf("registry: put %q: encode: %w", fn.Name, err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	key := s.fnPrefix + fn.Name
	if err := s.putScript.Exec(octx, s.client, []string{key, s.namesKey}, []string{string(raw), fn.Name}).Error(); err != nil {
		return s.fail(ctx, "put", fn.Name, err)
	}
	s.settle(octx, key)
	return nil
}

// Get returns the function called name, usually from the client-side cache without a round trip.
func (s *Store) Get(ctx context.Context, name string) (registry.Function, error) {
	if err := ctx.Err(); err != nil {
		return registry.Function{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	resp := s.client.DoCache(octx, s.client.B().Get().Key(s.fnPrefix+name).Cache(), s.cacheTTL)
	raw, err := resp.ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return registry.Function{}, s.fail(ctx, "get", name, err)
	}
	s.countLookup(resp.IsCacheHit())
	if err != nil { // nil reply: not registered (absence is cached and invalidated too)
		s.decoded.Delete(name)
		return registry.Function{}, fmt.Errorf("registry: get %q: %w", name, registry.ErrNotFound)
	}
	fn, err := s.decode(name, raw)
	if err != nil {
		return registry.Function{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	return fn, nil
}

// decode turns the stored JSON of the function called name into a copy of it, decoding only when the
// bytes changed since the last time.
func (s *Store) decode(name, raw string) (registry.Function, error) {
	if v, ok := s.decoded.Load(name); ok {
		if d := v.(*decodedFunction); d.raw == raw {
			return d.fn.Clone(), nil
		}
	}
	var fn registry.Function
	if err := json.Unmarshal([]byte(raw), &fn); err != nil {
		return registry.Function{}, fmt.Errorf("decode stored function: %w", err)
	}
	s.decoded.Store(name, &decodedFunction{raw: raw, fn: fn})
	return fn.Clone(), nil
}

// ListCached is List read through the client-side cache: the name index and each function cost a
// round trip the first time a node reads them and none after, until a change on any node invalidates
// them. It is for reads that repeat and may be a moment behind a change made on another node (health
// probes, the status page); List reads Redis.
func (s *Store) ListCached(ctx context.Context) ([]registry.Function, error) {
	return s.list(ctx, true)
}

// List returns every function, sorted by name, read from Redis (not the cache).
func (s *Store) List(ctx context.Context) ([]registry.Function, error) {
	return s.list(ctx, false)
}

// list reads the name index and then every function it names, from Redis or through the cache.
func (s *Store) list(ctx context.Context, cached bool) ([]registry.Function, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var index rueidis.RedisResult
	if cached {
		index = s.client.DoCache(octx, s.client.B().Smembers().Key(s.namesKey).Cache(), s.cacheTTL)
	} else {
		index = s.client.Do(octx, s.client.B().Smembers().Key(s.namesKey).Build())
	}
	names, err := index.AsStrSlice()
	if err != nil {
		return nil, s.fail(ctx, "list", "", err)
	}
	if len(names) == 0 {
		return []registry.Function{}, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = s.fnPrefix + n
	}
	vals, err := s.values(octx, keys, cached)
	if err != nil {
		return nil, s.fail(ctx, "list", "", err)
	}
	out := make([]registry.Function, 0, len(names))
	for i, name := range names {
		raw, err := vals[i].ToString()
		if rueidis.IsRedisNil(err) {
			continue // deleted since the index was read
		} else if err != nil {
			return nil, s.fail(ctx, "list", "", err)
		}
		fn, err := s.decode(name, raw)
		if err != nil {
			return nil, fmt.Errorf("registry: list: %q: %w", name, err)
		}
		out = append(out, fn)
	}
	registry.SortByName(out)
	return out, nil
}

// values reads keys in one MGET, or through the cache, in the order of keys.
func (s *Store) values(ctx context.Context, keys []string, cached bool) ([]rueidis.RedisMessage, error) {
	if !cached {
		return s.client.Do(ctx, s.client.B().Mget().Key(keys...).Build()).ToArray()
	}
	byKey, err := rueidis.MGetCache(s.client, ctx, s.cacheTTL, keys)
	if err != nil {
		return nil, err
	}
	vals := make([]rueidis.RedisMessage, len(keys))
	for i, k := range keys {
		vals[i] = byKey[k]
	}
	return vals, nil
}

// Delete removes the function called name on every node.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registry: delete %q: %w", name, err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	key := s.fnPrefix + name
	n, err := s.delScript.Exec(octx, s.client, []string{key, s.namesKey}, []string{name}).AsInt64()
	if err != nil {
		return s.fail(ctx, "delete", name, err)
	}
	s.settle(octx, key)
	if n == 0 {
		return fmt.Errorf("registry: delete %q: %w", name, registry.ErrNotFound)
	}
	return nil
}

// settle waits until this node's client-side cache agrees with Redis about key, right after this
// node wrote it. Redis pushes the invalidation on the connection that tracks the key, which need
// not be the one that carried the write, so without this a Get just after a Put could still be
// served the old value for a few microseconds. It returns as soon as the cache misses (the fetch
// happened after the write) or holds what Redis holds; it gives up silently when ctx ends, since
// the write itself succeeded and the invalidation is on its way.
func (s *Store) settle(ctx context.Context, key string) {
	const maxDelay = 10 * time.Millisecond
	delay := 50 * time.Microsecond
	for {
		cached := s.client.DoCache(ctx, s.client.B().Get().Key(key).Cache(), s.cacheTTL)
		if !cached.IsCacheHit() {
			return
		}
		fresh := s.client.Do(ctx, s.client.B().Get().Key(key).Build())
		cv, cerr := cached.ToString()
		fv, ferr := fresh.ToString()
		if ferr != nil && !rueidis.IsRedisNil(ferr) {
			return // Redis trouble; nothing more to learn
		}
		if cv == fv && rueidis.IsRedisNil(cerr) == rueidis.IsRedisNil(ferr) {
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

func (s *Store) countLookup(hit bool) {
	if hit {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	if s.onCacheHit != nil {
		s.onCacheHit(hit)
	}
}

// opContext bounds one operation by the store's timeout.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// fail wraps err from operation op on name through redisx.Classify: the caller's own cancellation as
// it is, registry.ErrUnavailable when Redis is away.
func (s *Store) fail(ctx context.Context, op, name string, err error) error {
	subject := op
	if name != "" {
		subject = fmt.Sprintf("%s %q", op, name)
	}
	return fmt.Errorf("registry: %s: %w", subject, redisx.Classify(ctx, err))
}
