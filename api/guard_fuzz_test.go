package api

import (
	"bufio"
	"context"
	"strings"
	"testing"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
	"github.com/sseedge/sseedge/internal/cors"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/node"
	"github.com/sseedge/sseedge/registry"
)

// FuzzAdminGuard sends arbitrary paths without a token through the real API chain (canonical path,
// router, the auth each route is registered with) and fails if any reaches a route that needs a token.
// The function API's routes are the real ones; those cmd/edge adds are stood in for with its auth.
func FuzzAdminGuard(f *testing.F) {
	guard := NewAuth(auth.NewAdminAuth("t"), auth.NewAdminAuth("m"), nil)
	r := NewRouter(nil)
	r.SaveMatchedRoutePath = true
	NewCore(CoreConfig{Node: node.New(node.Config{}), Auth: guard}).Register(r)
	fns, err := New(Config{Store: &registry.MemoryStore{}, Invoker: invoker.New(invoker.Config{}), Auth: guard,
		Deliver: func(context.Context, string, string, []byte) error { return nil }})
	if err != nil {
		f.Fatal(err)
	}
	fns.Register(r)
	ok := func(ctx *fasthttp.RequestCtx) {}
	// The routes cmd/edge adds, with the auth it gives them.
	for _, route := range []string{"/debug/vars", "/debug/pprof/{name:*}"} {
		r.GET(route, guard.Admin(ok))
	}
	r.GET("/metrics", guard.Metrics(ok))
	handler := Handler(r, cors.Policy{}, nil)
	open := func(route string) bool {
		switch {
		case route == "/admin/health", strings.HasPrefix(route, "/sse/"), strings.HasPrefix(route, "/subscribe/"):
			return true
		}
		return false
	}
	for _, p := range []string{"/publish/pets/..%2f..%2fx", "/admin/functions/..%2f..%2fx", "/admin/health", "/admin/health/../connections",
		"/%61dmin/connections", "/publish/%2e%2e/admin", "/clients/a/events", "/invoke/f", "/x/..%2Fadmin/", "//admin/", "/metrics/.", "/debug%2fvars"} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			f.Add(m, p)
		}
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if strings.ContainsAny(method+path, " \r\n\t") || method == "" || method == "OPTIONS" {
			return
		}
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader(method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))); err != nil {
			return
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		handler(&ctx)
		route, _ := ctx.UserValue(router.MatchedRoutePathParam).(string)
		if route != "" && !open(route) && ctx.Response.StatusCode() != fasthttp.StatusUnauthorized {
			t.Fatalf("%s %q reached route %s without a token (status %d)", method, path, route, ctx.Response.StatusCode())
		}
	})
}
