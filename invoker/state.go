package invoker

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/registry"
)

// errFailure and errNotCounted are what an attempt reports to its breaker: a failure of the
// function (connect error, timeout, 5xx, 429), or an outcome that says nothing about the function
// (the edge ran out of pooled connections). Success is nil.
var (
	errFailure    = errors.New("invoker: attempt failed")
	errNotCounted = errors.New("invoker: attempt not counted")
)

// fnState is the live state of one function: its endpoints, their breakers and health, and the
// round-robin cursor. It is rebuilt when the function's endpoints, health endpoint or breaker
// settings change (version), so a re-registration with new settings gets new breakers.
type fnState struct {
	version  uint64
	rr       atomic.Uint64 // invocations so far; also picks the next endpoint
	failures atomic.Uint64
	eps      []*endpointState
}

// endpointState is one endpoint of a function: its breaker and what health checks last said.
type endpointState struct {
	url       string // as registered, used for calls
	display   string // redacted, used in reports and spans
	healthURL string // "" when the function has no health endpoint
	cb        *gobreaker.CircuitBreaker[*attemptResult]

	mu        sync.Mutex
	probed    bool // a health probe has answered at least once
	probeOK   bool
	lastError string
	checkedAt time.Time
}

// probeHealthy reports whether the last health probe passed (true when there is none yet).
func (e *endpointState) probeHealthy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.probed || e.probeOK
}

func (e *endpointState) setLastError(msg string) {
	e.mu.Lock()
	e.lastError = msg
	e.mu.Unlock()
}

func (e *endpointState) setProbe(ok bool, msg string) {
	e.mu.Lock()
	e.probed, e.probeOK, e.checkedAt = true, ok, time.Now()
	if !ok {
		e.lastError = msg
	}
	e.mu.Unlock()
}

func (e *endpointState) health() EndpointHealth {
	state := e.cb.State()
	e.mu.Lock()
	defer e.mu.Unlock()
	h := EndpointHealth{
		Endpoint:     e.display,
		Healthy:      (!e.probed || e.probeOK) && state != gobreaker.StateOpen,
		BreakerState: state.String(),
		LastError:    e.lastError,
	}
	if !e.checkedAt.IsZero() {
		t := e.checkedAt
		h.CheckedAt = &t
	}
	return h
}

// stateVersion hashes what the live state depends on: endpoints, health endpoint, breaker settings.
func stateVersion(fn registry.Function) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	num := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	for _, t := range fn.Targets() {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	h.Write([]byte(fn.HealthEndpoint))
	b := fn.Breaker
	num(uint64(b.ConsecutiveFailures))
	num(math.Float64bits(b.FailureRatio))
	num(uint64(b.MinRequests))
	num(uint64(b.OpenDuration))
	num(uint64(b.HalfOpenProbes))
	num(uint64(b.Window))
	return h.Sum64()
}

// state returns the live state of fn, creating or replacing it when fn's version changed.
func (inv *Invoker) state(fn registry.Function) *fnState {
	v := stateVersion(fn)
	inv.mu.RLock()
	st := inv.fns[fn.Name]
	inv.mu.RUnlock()
	if st != nil && st.version == v {
		return st
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if st = inv.fns[fn.Name]; st != nil && st.version == v {
		return st
	}
	st = newFnState(fn, v, inv.cfg.Metrics)
	inv.fns[fn.Name] = st
	return st
}

func newFnState(fn registry.Function, version uint64, m *metrics.Metrics) *fnState {
	st := &fnState{version: version}
	for _, ep := range fn.Targets() {
		st.eps = append(st.eps, &endpointState{
			url:       ep,
			display:   registry.RedactURL(ep),
			healthURL: healthURL(ep, fn.HealthEndpoint),
			cb:        gobreaker.NewCircuitBreaker[*attemptResult](breakerSettings(fn.Name, ep, fn.Breaker, m)),
		})
	}
	return st
}

// healthURL resolves a function's health endpoint for one of its endpoints: a path is taken
// relative to the endpoint's origin, an absolute URL is used as is.
func healthURL(endpoint, health string) string {
	if health == "" || !strings.HasPrefix(health, "/") {
		return health
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	ref, err := url.Parse(health)
	if err != nil {
		return ""
	}
	return base.ResolveReference(ref).String()
}

// breakerSettings turns a function's breaker settings into gobreaker's. State changes go to the
// sseedge_breaker_state gauge of the function (of its last endpoint to change, when it has several).
func breakerSettings(fnName, endpoint string, b registry.Breaker, m *metrics.Metrics) gobreaker.Settings {
	consecutive := uint32(max(b.ConsecutiveFailures, 1))
	minReq := uint32(max(b.MinRequests, 1))
	ratio := b.FailureRatio
	probes := uint32(max(b.HalfOpenProbes, 1))
	return gobreaker.Settings{
		Name:        fnName + " " + registry.RedactURL(endpoint),
		MaxRequests: probes,
		Interval:    b.Window.Std(),
		Timeout:     b.OpenDuration.Std(),
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= consecutive {
				return true
			}
			return ratio > 0 && c.Requests >= minReq && float64(c.TotalFailures) >= ratio*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errNotCounted) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			m.SetBreakerState(fnName, breakerMetric(to))
		},
	}
}

func breakerMetric(s gobreaker.State) metrics.BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return metrics.BreakerOpen
	case gobreaker.StateHalfOpen:
		return metrics.BreakerHalfOpen
	}
	return metrics.BreakerClosed
}
