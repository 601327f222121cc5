package registry

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
)

// ErrUnavailable is wrapped by every error caused by Redis being unreachable, too slow, or not
// serving (LOADING, CLUSTERDOWN, ...), as opposed to a missing function or a caller's cancelled
// context. Callers map it to 503.
var ErrUnavailable = errors.New("registry: redis unavailable")

// Defaults of the Redis backends.
const (
	// DefaultRedisPrefix starts every key unless NewRedisStore is given another prefix.
	DefaultRedisPrefix = "sseedge"
	// DefaultRedisTimeout bounds each Redis operation, so even a hung server surfaces as
	// ErrUnavailable within about a second instead of blocking the caller.
	DefaultRedisTimeout = time.Second
	// DefaultCacheTTL is how long a client-side cached function may live. Freshness does not depend
	// on it: the server invalidates a cached key as soon as any node changes it. It only bounds
	// memory held for functions nobody asks for any more.
	DefaultCacheTTL = time.Hour
)

// NewRedisClient connects to Redis through the node's client factory (internal/redisx): one address
// is a standalone server (or any node of a cluster); several are nodes of one Redis Cluster.
// Client-side caching is on (RESP3 tracking, opt-in per command), which RedisStore relies on.
func NewRedisClient(addrs []string, password string) (rueidis.Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("registry: redis: no address")
	}
	c, err := redisx.NewClient(redisx.Config{Addr: strings.Join(addrs, ","), Password: password}, nil)
	if err != nil {
		return nil, fmt.Errorf("registry: connect to redis %v: %w", addrs, classify(err))
	}
	return c, nil
}

// CacheStats counts Get lookups answered from the client-side cache (Hits) and those that needed a
// round trip to Redis (Misses).
type CacheStats struct {
	Hits, Misses uint64
}

// RedisStoreOption configures a RedisStore.
type RedisStoreOption func(*RedisStore)

// WithRedisTimeout bounds each operation (default DefaultRedisTimeout). A shorter deadline in
// the caller's context still wins.
func WithRedisTimeout(d time.Duration) RedisStoreOption {
	return func(s *RedisStore) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithCacheTTL sets the client-side cache TTL (default DefaultCacheTTL).
func WithCacheTTL(d time.Duration) RedisStoreOption {
	return func(s *RedisStore) {
		if d > 0 {
			s.cacheTTL = d
		}
	}
}

// WithOnCacheHit calls fn after every Get that Redis or the cache answered (found or not) with
// whether it was served from the client-side cache, so metrics can be wired without this package
// knowing about them. Failed Gets are not counted.
// fn must be fast and safe for concurrent use.
func WithOnCacheHit(fn func(hit bool)) RedisStoreOption {
	return func(s *RedisStore) { s.onCacheHit = fn }
}

// RedisStore is the Store shared by every node of a deployment.
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
type RedisStore struct {
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

var _ Store = (*RedisStore)(nil)

// decodedFunction is the last JSON seen for a name and the Function it decodes to.
type decodedFunction struct {
	raw string
	fn  Function
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

// NewRedisStore returns a Store kept in Redis under prefix ("" means DefaultRedisPrefix), read
// through client's client-side cache. The prefix must not contain '{' or '}', which would change
// the cluster hash tag; NewRedisStore panics if it does, as that is a programming error.
func NewRedisStore(client rueidis.Client, prefix string, opts ...RedisStoreOption) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("registry: redis prefix %q contains a brace", prefix))
	}
	s := &RedisStore{
		client:    client,
		fnPrefix:  prefix + ":{fn}:",
		namesKey:  prefix + ":{fn}:_names",
		timeout:   DefaultRedisTimeout,
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
func (s *RedisStore) Stats() CacheStats {
	return CacheStats{Hits: s.hits.Load(), Misses: s.misses.Load()}
}

// Put validates fn and stores it, replacing any function of the same name on every node.
func (s *RedisStore) Put(ctx context.Context, fn Function) error {
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
func (s *RedisStore) Get(ctx context.Context, name string) (Function, error) {
	if err := ctx.Err(); err != nil {
		return Function{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	resp := s.client.DoCache(octx, s.client.B().Get().Key(s.fnPrefix+name).Cache(), s.cacheTTL)
	raw, err := resp.ToString()
	if err != nil && !rueidis.IsRedisNil(err) {
		return Function{}, s.fail(ctx, "get", name, err)
	}
	s.countLookup(resp.IsCacheHit())
	if err != nil { // nil reply: not registered (absence is cached and invalidated too)
		s.decoded.Delete(name)
		return Function{}, fmt.Errorf("registry: get %q: %w", name, ErrNotFound)
	}
	fn, err := s.decode(name, raw)
	if err != nil {
		return Function{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	return fn, nil
}

// decode turns the stored JSON of the function called name into a copy of it, decoding only when the
// bytes changed since the last time.
func (s *RedisStore) decode(name, raw string) (Function, error) {
	if v, ok := s.decoded.Load(name); ok {
		if d := v.(*decodedFunction); d.raw == raw {
			return d.fn.Clone(), nil
		}
	}
	var fn Function
	if err := json.Unmarshal([]byte(raw), &fn); err != nil {
		return Function{}, fmt.Errorf("decode stored function: %w", err)
	}
	s.decoded.Store(name, &decodedFunction{raw: raw, fn: fn})
	return fn.Clone(), nil
}

// ListCached is List read through the client-side cache: the name index and each function cost a
// round trip the first time a node reads them and none after, until a change on any node invalidates
// them. It is for reads that repeat and may be a moment behind a change made on another node (health
// probes, the status page); List reads Redis.
func (s *RedisStore) ListCached(ctx context.Context) ([]Function, error) {
	return s.list(ctx, true)
}

// List returns every function, sorted by name, read from Redis (not the cache).
func (s *RedisStore) List(ctx context.Context) ([]Function, error) {
	return s.list(ctx, false)
}

// list reads the name index and then every function it names, from Redis or through the cache.
func (s *RedisStore) list(ctx context.Context, cached bool) ([]Function, error) {
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
		return []Function{}, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = s.fnPrefix + n
	}
	vals, err := s.values(octx, keys, cached)
	if err != nil {
		return nil, s.fail(ctx, "list", "", err)
	}
	out := make([]Function, 0, len(names))
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
	SortByName(out)
	return out, nil
}

// values reads keys in one MGET, or through the cache, in the order of keys.
func (s *RedisStore) values(ctx context.Context, keys []string, cached bool) ([]rueidis.RedisMessage, error) {
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
func (s *RedisStore) Delete(ctx context.Context, name string) error {
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
		return fmt.Errorf("registry: delete %q: %w", name, ErrNotFound)
	}
	return nil
}

// settle waits until this node's client-side cache agrees with Redis about key, right after this
// node wrote it. Redis pushes the invalidation on the connection that tracks the key, which need
// not be the one that carried the write, so without this a Get just after a Put could still be
// served the old value for a few microseconds. It returns as soon as the cache misses (the fetch
// happened after the write) or holds what Redis holds; it gives up silently when ctx ends, since
// the write itself succeeded and the invalidation is on its way.
func (s *RedisStore) settle(ctx context.Context, key string) {
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

func (s *RedisStore) countLookup(hit bool) {
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
func (s *RedisStore) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// fail wraps err from operation op on name: the caller's own cancellation as is, anything else
// through classify.
func (s *RedisStore) fail(ctx context.Context, op, name string, err error) error {
	subject := op
	if name != "" {
		subject = fmt.Sprintf("%s %q", op, name)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("registry: %s: %w", subject, cerr)
	}
	return fmt.Errorf("registry: %s: %w", subject, classify(err))
}

// classify marks err as ErrUnavailable unless it is a Redis reply that says something other than
// "not serving right now" (such as WRONGTYPE or a bad password), which retrying will not fix.
func classify(err error) error {
	if rerr := (*rueidis.RedisError)(nil); errors.As(err, &rerr) && rerr != rueidis.Nil { // wrapped by redisx too
		if rerr.IsLoading() || rerr.IsClusterDown() || rerr.IsTryAgain() ||
			strings.HasPrefix(rerr.Error(), "MASTERDOWN") || strings.HasPrefix(rerr.Error(), "BUSY ") {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
