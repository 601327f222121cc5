package invoker_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// newInvoker returns an Invoker whose idle connections (and fasthttp's cleaner goroutines) go away
// quickly, closed when the test ends.
func newInvoker(t *testing.T, cfg invoker.Config) *invoker.Invoker {
	t.Helper()
	if cfg.MaxIdleConnDuration == 0 {
		cfg.MaxIdleConnDuration = 100 * time.Millisecond
	}
	inv := invoker.New(cfg)
	t.Cleanup(inv.Close)
	return inv
}

// fn returns a normalized function for endpoints, with fast back-off, changed by edit.
func fn(t *testing.T, name string, endpoints []string, edit func(*registry.Function)) registry.Function {
	t.Helper()
	f := registry.Function{Name: name, Endpoints: endpoints, Timeout: registry.Duration(5 * time.Second)}
	f.Retry.BackoffBase = registry.Duration(time.Millisecond)
	f.Retry.BackoffCap = registry.Duration(5 * time.Millisecond)
	if edit != nil {
		edit(&f)
	}
	n, err := f.Normalize()
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	return n
}

// deadAddress returns the URL of a loopback port nobody listens on any more.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/"
}

func wantCode(t *testing.T, err error, code invoker.Code) *invoker.Error {
	t.Helper()
	var ie *invoker.Error
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *invoker.Error with code %s", err, code)
	}
	if ie.Code != code {
		t.Fatalf("code = %s (%v), want %s", ie.Code, err, code)
	}
	return ie
}

func invoke(t *testing.T, inv *invoker.Invoker, f registry.Function, payload string) (invoker.Result, error) {
	t.Helper()
	return inv.Invoke(context.Background(), f, invoker.Request{Payload: []byte(payload), InvocationID: "inv-1"})
}

func readBody(r *http.Request) []byte {
	var b bytes.Buffer
	b.ReadFrom(r.Body)
	return b.Bytes()
}

// hang blocks a test function until its caller goes away. net/http notices a closed connection
// only once the request body has been read, so it reads the body first.
func hang(r *http.Request) {
	readBody(r)
	<-r.Context().Done()
}
