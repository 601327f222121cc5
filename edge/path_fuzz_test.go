package edge

import (
	"bufio"
	"context"
	"strings"
	"testing"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/auth"
)

// FuzzAdminGuard sends arbitrary paths without a token through the real API chain (canonical path,
// guard, router) and fails if any reaches a route that needs the admin token. Routes the function API
// and cmd/edge add are stood in for by handlers on the same patterns.
func FuzzAdminGuard(f *testing.F) {
	s, err := New(Config{AdminAuth: auth.NewAdminAuth("t"), MetricsAuth: auth.NewAdminAuth("m")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	s.router = newRouter()
	s.router.SaveMatchedRoutePath = true
	s.routes()
	ok := func(ctx *fasthttp.RequestCtx) {}
	for _, route := range []string{"/admin/functions", "/admin/functions/{name}", "/invoke/{name}", "/debug/vars", "/debug/pprof/{name:*}", "/metrics"} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			s.router.Handle(m, route, ok)
		}
	}
	handler := s.apiHandler()
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
		if route != "" && !open(route) {
			t.Fatalf("%s %q reached route %s without a token (status %d)", method, path, route, ctx.Response.StatusCode())
		}
	})
}
