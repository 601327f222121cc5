package edge

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
)

// ReservedTopicPrefix holds the edge's own topics (its status stream). Only the edge publishes there, and
// only an admin may read them.
const ReservedTopicPrefix = "/_sseedge"

func reservedTopic(topic string) bool {
	return topic == ReservedTopicPrefix || strings.HasPrefix(topic, ReservedTopicPrefix+"/")
}

// adminPath reports whether a path needs the admin token: publishing, admin calls, invocations and
// debug data. GET /admin/health stays open for load balancers.
func adminPath(path []byte) bool {
	if bytes.Equal(path, []byte("/admin/health")) {
		return false
	}
	for _, p := range [...]string{"/publish/", "/clients/", "/admin/", "/invoke/", "/debug/"} {
		if bytes.HasPrefix(path, []byte(p)) || bytes.Equal(path, []byte(p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// guard enforces the admin token on admin paths, whichever package registered them, and the metrics
// token on /metrics. It runs behind canonical, so the path it checks is the path the router routes. The status page (GET /admin/) may take the admin token as ?token=, since a browser
// navigating to it cannot set a header.
func (s *Server) guard(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		var check auth.AdminAuth
		switch {
		case ctx.IsOptions():
		case bytes.Equal(path, []byte("/metrics")):
			check = s.cfg.MetricsAuth
		case adminPath(path):
			check = s.cfg.AdminAuth
		}
		if check.Enabled() {
			header := ctx.Request.Header.Peek("Authorization")
			if len(header) == 0 && ctx.IsGet() && bytes.Equal(path, []byte("/admin/")) {
				if tok := ctx.QueryArgs().Peek("token"); len(tok) > 0 {
					header = append([]byte("Bearer "), tok...)
				}
			}
			if err := check.Check(header); err != nil {
				status, code := auth.Code(err)
				ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="sseedge"`)
				s.fail(ctx, status, code, err.Error())
				return
			}
		}
		next(ctx)
	}
}

// authorizeStream checks a stream request's token: sub must be the client ID of /sse/{id}, and topics
// must cover the topic of /subscribe/{topic}. Reserved topics need the admin token instead.
func (s *Server) authorizeStream(req *streamRequest, token string) *apiError {
	var err error
	var claims *auth.Claims
	switch {
	case req.kind == kindTopic && reservedTopic(req.key):
		if s.cfg.AdminAuth.Enabled() {
			err = s.cfg.AdminAuth.Check([]byte("Bearer " + token))
		}
	case req.kind == kindTopic:
		claims, err = s.cfg.StreamAuth.AuthorizeTopic(token, req.key)
	default:
		claims, err = s.cfg.StreamAuth.AuthorizeClient(token, req.key)
	}
	if err == nil {
		req.exp = unixDeadline(s.cfg.StreamAuth.Deadline(claims))
		return nil
	}
	status, code := auth.Code(err)
	return &apiError{status: status, code: code, msg: err.Error()}
}

// ipLimiter bounds the streams one source address may hold. Behind a load balancer every stream comes
// from the balancer's address, so there the balancer should enforce the bound and this one be off (0).
type ipLimiter struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func (l *ipLimiter) acquire(ip netip.Addr) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	if l.n == nil {
		l.n = make(map[netip.Addr]int)
	}
	l.n[ip]++
	return true
}

func (l *ipLimiter) release(ip netip.Addr) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
}

// remoteIP is the peer's address without port, IPv4-mapped addresses unmapped.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
