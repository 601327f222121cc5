package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Function holds the pre-resolved series of one function. Resolve it once with Metrics.Function (at
// registration, next to the function's breaker) and keep it; its methods do not allocate. A nil
// *Function is valid and does nothing.
type Function struct {
	name     string
	outcomes [numOutcomes]prometheus.Counter
	duration prometheus.Observer
	attempts prometheus.Observer
	breaker  prometheus.Gauge
}

// Function returns the series of the function named name, creating them on first use with every
// outcome at zero and the breaker closed. Once WithMaxFunctions distinct names exist, further names
// share the series of OverflowLabel. Returns nil on a nil *Metrics.
func (m *Metrics) Function(name string) *Function {
	if m == nil {
		return nil
	}
	m.mu.RLock()
	f := m.functions[name]
	m.mu.RUnlock()
	if f != nil {
		return f
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f = m.functions[name]; f != nil {
		return f
	}
	label := name
	if len(m.functions) >= m.cfg.maxFunctions {
		if f = m.functions[OverflowLabel]; f != nil {
			return f
		}
		label = OverflowLabel
	}
	f = &Function{
		name:     label,
		duration: m.invokeDur.WithLabelValues(label),
		attempts: m.attempts,
		breaker:  m.breaker.WithLabelValues(label),
	}
	for o := Outcome(0); o < numOutcomes; o++ {
		f.outcomes[o] = m.invocations.WithLabelValues(label, o.String())
	}
	f.breaker.Set(float64(BreakerClosed))
	m.functions[label] = f
	return f
}

// ForgetFunction deletes the series of a function that was removed from the registry, so deleted
// functions do not accumulate. Handles obtained earlier keep working but no longer export anything.
func (m *Metrics) ForgetFunction(name string) {
	if m == nil || name == OverflowLabel {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.functions[name]; !ok {
		return
	}
	delete(m.functions, name)
	for o := Outcome(0); o < numOutcomes; o++ {
		m.invocations.DeleteLabelValues(name, o.String())
	}
	m.invokeDur.DeleteLabelValues(name)
	m.breaker.DeleteLabelValues(name)
}

// ObserveInvocation is Function(function).Invoked(o, d, attempts), for callers that do not keep the
// handle; it does not allocate once the function's series exist.
func (m *Metrics) ObserveInvocation(function string, o Outcome, d time.Duration, attempts int) {
	m.Function(function).Invoked(o, d, attempts)
}

// SetBreakerState is Function(function).SetBreakerState(s), shaped for a gobreaker OnStateChange
// callback, which receives the breaker's name.
func (m *Metrics) SetBreakerState(function string, s BreakerState) {
	m.Function(function).SetBreakerState(s)
}

// Name is the label value f reports under: the function's name, or OverflowLabel.
func (f *Function) Name() string {
	if f == nil {
		return ""
	}
	return f.name
}

// Invoked counts one invocation ending with outcome o after d and attempts attempts. Duration and
// attempts are recorded only for outcomes that reached the function (ok, error, timeout), so that
// instant refusals (circuit_open, rejected) do not drag the latency quantiles toward zero. An
// unknown outcome counts as OutcomeError.
func (f *Function) Invoked(o Outcome, d time.Duration, attempts int) {
	if f == nil {
		return
	}
	if o >= numOutcomes {
		o = OutcomeError
	}
	f.outcomes[o].Inc()
	if o.called() {
		f.duration.Observe(d.Seconds())
		if attempts > 0 {
			f.attempts.Observe(float64(attempts))
		}
	}
}

// SetBreakerState reports the function's breaker state.
func (f *Function) SetBreakerState(s BreakerState) {
	if f == nil {
		return
	}
	f.breaker.Set(float64(s))
}
