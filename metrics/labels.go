package metrics

// The label values of sseedge metrics are closed sets: each label is an enum here, and its children
// are resolved once in New, so the hot path indexes an array instead of hashing label strings, and no
// client ID, topic or other unbounded value can ever reach a label. The two open labels, function and
// command, are bounded differently: see Metrics.Function and Metrics.ObserveRedisCommand.

// Kind is the kind of a held stream, the label kind of sseedge_connections and
// sseedge_connections_opened_total.
type Kind uint8

// The kinds of stream the edge holds.
const (
	KindSSE   Kind = iota // GET /sse/{clientId}, a client's personal stream
	KindTopic             // GET /subscribe/{topic...}
	KindMCP               // an MCP session stream (SSE or Streamable HTTP transport)
	numKinds
)

// String is the label value of k.
func (k Kind) String() string {
	switch k {
	case KindSSE:
		return "sse"
	case KindTopic:
		return "topic"
	case KindMCP:
		return "mcp"
	}
	return "unknown"
}

// CloseReason is why a stream ended, the label reason of sseedge_connections_closed_total.
type CloseReason uint8

// The reasons a stream ends.
const (
	CloseClient       CloseReason = iota // the client went away (EOF, reset)
	CloseSlowConsumer                    // the edge dropped a client that could not keep up
	CloseShutdown                        // the node is draining
	CloseError                           // a write or protocol error on the edge's side
	CloseTimeout                         // a deadline expired (token expiry, idle timeout)
	numCloseReasons
)

// String is the label value of r.
func (r CloseReason) String() string {
	switch r {
	case CloseClient:
		return "client"
	case CloseSlowConsumer:
		return "slow_consumer"
	case CloseShutdown:
		return "shutdown"
	case CloseError:
		return "error"
	case CloseTimeout:
		return "timeout"
	}
	return "unknown"
}

// RejectReason is why a request was refused before any work, the label reason of
// sseedge_requests_rejected_total.
type RejectReason uint8

// The reasons a request is refused.
const (
	RejectBadRequest   RejectReason = iota // malformed head, body or parameters (400)
	RejectTooLarge                         // head or body over its limit (413, 431)
	RejectRateLimited                      // over a rate or connection limit (429, 503)
	RejectUnauthorized                     // no or bad credentials (401)
	RejectForbidden                        // credentials that do not allow this (403)
	RejectNotFound                         // unknown route, function or client (404)
	numRejectReasons
)

// String is the label value of r.
func (r RejectReason) String() string {
	switch r {
	case RejectBadRequest:
		return "bad_request"
	case RejectTooLarge:
		return "too_large"
	case RejectRateLimited:
		return "rate_limited"
	case RejectUnauthorized:
		return "unauthorized"
	case RejectForbidden:
		return "forbidden"
	case RejectNotFound:
		return "not_found"
	}
	return "unknown"
}

// Outcome is how one invocation of a function ended, the label outcome of sseedge_invocations_total.
type Outcome uint8

// The outcomes of an invocation.
const (
	OutcomeOK          Outcome = iota // the function answered with a 2xx
	OutcomeError                      // the function failed after every attempt (non-2xx, refused, reset)
	OutcomeTimeout                    // the invocation's deadline expired
	OutcomeCircuitOpen                // the function's breaker was open, so it was not called
	OutcomeRejected                   // refused before calling: bad payload, queue full, not allowed
	numOutcomes
)

// String is the label value of o.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeError:
		return "error"
	case OutcomeTimeout:
		return "timeout"
	case OutcomeCircuitOpen:
		return "circuit_open"
	case OutcomeRejected:
		return "rejected"
	}
	return "unknown"
}

// called reports whether an invocation with this outcome reached the function, so that its duration
// and attempts say something about the function rather than about the edge refusing early.
func (o Outcome) called() bool {
	return o == OutcomeOK || o == OutcomeError || o == OutcomeTimeout
}

// BreakerState is a circuit breaker's state; its value is what sseedge_breaker_state reports
// (0 closed, 1 half-open, 2 open), so dashboards can threshold on it.
type BreakerState uint8

// The states of a circuit breaker, in the order of sony/gobreaker's State.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String names s.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// SessionEviction is why an MCP session was evicted, the label reason of
// sseedge_mcp_sessions_evicted_total.
type SessionEviction uint8

// The reasons an MCP session is evicted.
const (
	EvictAddressLimit SessionEviction = iota // its source address held as many sessions as it may
	EvictStoreFull                           // the store held as many sessions as it may
	numSessionEvictions
)

// String is the label value of r.
func (r SessionEviction) String() string {
	if r == EvictAddressLimit {
		return "address_limit"
	}
	return "store_full"
}
