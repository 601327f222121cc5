package invoker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/registry"
)

// FunctionHealth is the live health of one function, per endpoint.
type FunctionHealth struct {
	// Healthy is true when at least one endpoint is.
	Healthy   bool             `json:"healthy"`
	Endpoints []EndpointHealth `json:"endpoints"`
	// Invocations and Failures count this node's invocations of the function's current version.
	Invocations uint64 `json:"invocations"`
	Failures    uint64 `json:"failures"`
}

// EndpointHealth is what the edge knows about one endpoint: it is healthy when its last health
// probe passed (or it has no health endpoint) and its breaker is not open.
type EndpointHealth struct {
	Endpoint     string     `json:"endpoint"` // redacted
	Healthy      bool       `json:"healthy"`
	BreakerState string     `json:"breaker_state"` // "closed", "open" or "half-open"
	LastError    string     `json:"last_error,omitempty"`
	CheckedAt    *time.Time `json:"checked_at,omitempty"` // last health probe, if any
}

// Health returns the live health of the function called fnName as last seen by this invoker;
// empty when it has not been invoked or probed since it was registered.
func (inv *Invoker) Health(fnName string) FunctionHealth {
	inv.mu.RLock()
	st := inv.fns[fnName]
	inv.mu.RUnlock()
	return st.health()
}

// HealthFor returns the live health of fn as registered now: endpoints never called yet are
// reported healthy with a closed breaker.
func (inv *Invoker) HealthFor(fn registry.Function) FunctionHealth {
	inv.mu.RLock()
	st := inv.fns[fn.Name]
	inv.mu.RUnlock()
	if st == nil || st.version != stateVersion(fn) {
		st = newFnState(fn, 0, nil) // what a fresh state would say, without keeping it (nor its metrics)
	}
	return st.health()
}

func (st *fnState) health() FunctionHealth {
	h := FunctionHealth{Endpoints: []EndpointHealth{}}
	if st == nil {
		return h
	}
	h.Invocations, h.Failures = st.rr.Load(), st.failures.Load()
	for _, ep := range st.eps {
		eh := ep.health()
		h.Healthy = h.Healthy || eh.Healthy
		h.Endpoints = append(h.Endpoints, eh)
	}
	return h
}

// StartHealthChecks probes, every interval, the health endpoint of each function that list returns
// (GET, 2xx = healthy) and drops the live state of functions no longer listed (deleted on another
// node, say). Functions without a health endpoint are judged by their breakers alone. The checks
// stop when ctx is done or Close is called. It may be started once.
func (inv *Invoker) StartHealthChecks(ctx context.Context, interval time.Duration, list func(ctx context.Context) ([]registry.Function, error)) error {
	if interval <= 0 {
		return fmt.Errorf("invoker: health check interval %v is not positive", interval)
	}
	if inv.closed.Load() {
		return errors.New("invoker: closed")
	}
	if !inv.started.CompareAndSwap(false, true) {
		return errors.New("invoker: health checks already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(inv.life, cancel)
	inv.health.Add(1)
	go func() {
		defer inv.health.Done()
		defer stopOnClose()
		defer cancel()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			inv.healthRound(ctx, interval, list)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return nil
}

// healthRound runs one round of probes, at most HealthConcurrency at a time, and returns when all
// have answered or timed out.
func (inv *Invoker) healthRound(ctx context.Context, interval time.Duration, list func(ctx context.Context) ([]registry.Function, error)) {
	fns, err := list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			inv.cfg.Logger.Warn("health check: listing functions failed", "err", err)
		}
		return
	}
	inv.retain(fns)
	timeout := min(inv.cfg.HealthTimeout, interval)
	sem := make(chan struct{}, inv.cfg.HealthConcurrency)
	var wg sync.WaitGroup
	for _, fn := range fns {
		if fn.HealthEndpoint == "" {
			continue
		}
		st := inv.state(fn)
		for _, ep := range st.eps {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				ok, msg := inv.probe(fn, ep, time.Now().Add(timeout))
				ep.setProbe(ok, msg)
			})
		}
	}
	wg.Wait()
}

// retain drops the live state of functions that are no longer registered.
func (inv *Invoker) retain(fns []registry.Function) {
	keep := make(map[string]struct{}, len(fns))
	for _, fn := range fns {
		keep[fn.Name] = struct{}{}
	}
	inv.mu.Lock()
	for name := range inv.fns {
		if _, ok := keep[name]; !ok {
			delete(inv.fns, name)
		}
	}
	inv.mu.Unlock()
}

// probe GETs an endpoint's health URL with the function's registered headers.
func (inv *Invoker) probe(fn registry.Function, ep *endpointState, deadline time.Time) (bool, string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(ep.healthURL)
	req.Header.SetMethod(fasthttp.MethodGet)
	for k, v := range fn.Headers {
		req.Header.Set(k, v)
	}
	if err := inv.client.DoDeadline(req, resp, deadline); err != nil {
		return false, "health check: " + err.Error()
	}
	if s := resp.StatusCode(); s < 200 || s > 299 {
		return false, fmt.Sprintf("health check: status %d", s)
	}
	return true, ""
}
