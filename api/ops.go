package api

import (
	"expvar"
	"net/http/pprof"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// RegisterOps adds the operator's routes to r: GET /metrics (metricsHandler, behind the metrics token)
// and the debug data (GET /debug/vars, GET /debug/pprof/{profile}, behind the admin token).
func RegisterOps(r *router.Router, a Auth, metricsHandler fasthttp.RequestHandler) {
	r.GET("/metrics", a.Metrics(metricsHandler))
	r.GET("/debug/vars", a.Admin(fasthttpadaptor.NewFastHTTPHandler(expvar.Handler())))
	r.GET("/debug/pprof/{profile}", a.Admin(func(ctx *fasthttp.RequestCtx) {
		switch name := userValue(ctx, "profile"); name {
		case "profile": // CPU, for ?seconds=
			fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Profile)(ctx)
		case "trace":
			fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Trace)(ctx)
		default:
			fasthttpadaptor.NewFastHTTPHandler(pprof.Handler(name))(ctx)
		}
	}))
}
