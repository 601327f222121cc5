package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ObserveRedisCommand records one Redis command's round trip. command must come from code (a
// constant such as "GET" or "XADD"), never from a request; distinct commands beyond
// WithMaxRedisCommands share OverflowLabel. It does not allocate once the command has been seen.
func (m *Metrics) ObserveRedisCommand(command string, d time.Duration) {
	if m == nil {
		return
	}
	m.mu.RLock()
	obs := m.redisCommands[command]
	m.mu.RUnlock()
	if obs == nil {
		obs = m.redisCommand(command)
	}
	obs.Observe(d.Seconds())
}

// redisCommand resolves the observer of command, or of OverflowLabel past the cap.
func (m *Metrics) redisCommand(command string) prometheus.Observer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if obs := m.redisCommands[command]; obs != nil {
		return obs
	}
	label := command
	if len(m.redisCommands) >= m.cfg.maxRedisCommands {
		if obs := m.redisCommands[OverflowLabel]; obs != nil {
			return obs
		}
		label = OverflowLabel
	}
	obs := m.redisCmd.WithLabelValues(label)
	m.redisCommands[label] = obs
	return obs
}

// RedisCacheHit counts a registry read served by the client-side cache.
func (m *Metrics) RedisCacheHit() {
	if m == nil {
		return
	}
	m.redisHits.Inc()
}

// RedisCacheMiss counts a registry read that went to Redis.
func (m *Metrics) RedisCacheMiss() {
	if m == nil {
		return
	}
	m.redisMisses.Inc()
}

// SetRedisUp reports whether the Redis connection is healthy.
func (m *Metrics) SetRedisUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.redisUp.Set(1)
	} else {
		m.redisUp.Set(0)
	}
}

// ObserveBusProbe records how long one round of bus liveness probes took.
func (m *Metrics) ObserveBusProbe(d time.Duration) {
	if m == nil {
		return
	}
	m.busProbe.Observe(d.Seconds())
}

// BusProbesFailed counts n bus liveness probes that failed or did not come back in time.
func (m *Metrics) BusProbesFailed(n int) {
	if m == nil {
		return
	}
	m.busProbeBad.Add(float64(n))
}
