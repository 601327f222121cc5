// Package stateerr holds the one error that says a node's shared state (Redis) cannot be reached. It
// has no dependencies, so packages that must not know Redis (fanout, registry's function model) can
// return and test it while internal/redisx, the only place Redis errors are classified, wraps it.
package stateerr

import "errors"

// ErrUnavailable is wrapped by every error caused by the shared state being unreachable, too slow or
// not serving right now (LOADING, CLUSTERDOWN, a failover, ...), as opposed to a missing thing or the
// caller's own cancelled context. fanout.ErrUnavailable, registry.ErrUnavailable and
// redisx.ErrUnavailable are this value; callers test it with errors.Is and answer 503 rather than wait.
var ErrUnavailable = errors.New("state unavailable")
