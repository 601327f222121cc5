package testutil

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// FunctionServer is a function under test: a real HTTP server that serves h and counts the requests it
// receives (Hits), closed when the test ends.
type FunctionServer struct {
	*httptest.Server
	Hits atomic.Int64
}

// NewFunctionServer starts a FunctionServer on a loopback port.
func NewFunctionServer(t testing.TB, h http.HandlerFunc) *FunctionServer {
	t.Helper()
	fs := &FunctionServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.Hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}
