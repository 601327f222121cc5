package api

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/internal/httpjson"
	"github.com/sseedge/sseedge/metrics"
	"github.com/sseedge/sseedge/transport"
)

// Auth says which token the routes that need one take. It is applied where a route is registered
// (Admin, Metrics, StatusPage), never by matching paths, so a route's auth is visible beside it. The zero
// value leaves every route open.
type Auth struct {
	AdminToken   auth.AdminAuth // publishing, admin calls, invocations, debug data
	MetricsToken auth.AdminAuth // GET /metrics; zero: the admin token when both secrets are set, else open
}

// NewAuth is the API's auth from the node's secrets: the metrics token defaults to the admin token on
// a node with both the admin token and stream tokens, since such a node listens beyond loopback and its
// /metrics must not be public.
func NewAuth(admin, metricsToken auth.AdminAuth, streams *auth.StreamAuth) Auth {
	if !metricsToken.Enabled() && admin.Enabled() && streams.Enabled() {
		metricsToken = admin
	}
	return Auth{AdminToken: admin, MetricsToken: metricsToken}
}

// Admin wraps h so that it runs only for a request with the admin token.
func (a Auth) Admin(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return require(a.AdminToken, h, false)
}

// Metrics wraps h (GET /metrics) so that it runs only with the metrics token.
func (a Auth) Metrics(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return require(a.MetricsToken, h, false)
}

// StatusPage wraps h (GET /admin/) like Admin, but also takes the token as ?token=, since a browser
// navigating to the page cannot set a header.
func (a Auth) StatusPage(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return require(a.AdminToken, h, true)
}

func require(check auth.AdminAuth, h fasthttp.RequestHandler, fromQuery bool) fasthttp.RequestHandler {
	if !check.Enabled() {
		return h
	}
	return func(ctx *fasthttp.RequestCtx) {
		header := ctx.Request.Header.Peek("Authorization")
		if len(header) == 0 && fromQuery {
			if tok := ctx.QueryArgs().Peek("token"); len(tok) > 0 {
				header = append([]byte("Bearer "), tok...)
			}
		}
		if err := check.Check(header); err != nil {
			status, code := auth.Code(err)
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="sseedge"`)
			httpjson.WriteError(ctx, status, code, err.Error())
			return
		}
		h(ctx)
	}
}

// Handler is the chain every API request goes through before r routes it: rejections are counted, CORS
// headers added, and the path made canonical first, so that the router and every parser behind it read
// the same path.
func Handler(r *router.Router, policy cors.Policy, m *metrics.Metrics) fasthttp.RequestHandler {
	return countRejections(m, withCORS(policy, canonical(r.Handler)))
}

// canonical puts the canonical path in the request's URI before anything reads it, or refuses the
// request with 400 bad_path. With it in place, fasthttp's cleaned path (ctx.Path) and the raw path the
// router matches (URI().PathOriginal) are the same string.
func canonical(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		p, err := transport.CanonicalPath(string(ctx.Request.URI().PathOriginal()))
		if err != nil {
			httpjson.WriteError(ctx, fasthttp.StatusBadRequest, "bad_path", err.Error())
			return
		}
		ctx.Request.URI().SetPath(p)
		next(ctx)
	}
}

// withCORS adds CORS headers for allowed origins to every API response.
func withCORS(policy cors.Policy, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		origin := ctx.Request.Header.Peek("Origin")
		if len(origin) > 0 && policy.Allowed(string(origin)) {
			h := &ctx.Response.Header
			if policy.Any() {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.SetBytesV("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Add("Vary", "Origin")
			}
		}
		next(ctx)
	}
}

// countRejections counts every 4xx answer of the API, whichever package's handler gave it.
func countRejections(m *metrics.Metrics, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		next(ctx)
		if status := ctx.Response.StatusCode(); status >= 400 && status < 500 {
			m.RequestRejected(metrics.RejectReasonOf(status))
		}
	}
}

func handlePreflight(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Authorization, X-User-ID")
	h.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
