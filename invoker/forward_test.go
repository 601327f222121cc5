package invoker_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/sseedge/sseedge/internal/testutil"
	"github.com/sseedge/sseedge/invoker"
)

// TestForwardedRequest: a forwarded request (a GRIP call) goes with its own method, the path appended
// to the endpoint's, its query, its header lines (repeated ones kept) and content type, and the answer
// keeps its headers.
func TestForwardedRequest(t *testing.T) {
	type call struct {
		method, path, query, ct, body string
		cookies                       []string
	}
	calls := make(chan call, 4)
	srv := testutil.NewFunctionServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls <- call{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(readBody(r)), r.Header.Values("X-Multi")}
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Grip-Hold", "stream")
		w.WriteHeader(http.StatusAccepted)
	})
	inv := newInvoker(t, invoker.Config{})
	f := fn(t, "fwd", []string{srv.URL + "/base/"}, nil)
	for _, c := range []struct {
		fw       invoker.Forward
		body     string
		wantPath string
	}{
		{invoker.Forward{Method: "PUT", Path: "/a/b", RawQuery: "x=1&y=2", ContentType: "text/plain",
			Header: [][2]string{{"X-Multi", "one"}, {"X-Multi", "two"}}}, "hello", "/base/a/b"},
		{invoker.Forward{Method: "GET", Path: "/"}, "", "/base/"},
		{invoker.Forward{Method: "HEAD", Path: "/h"}, "", "/base/h"},
	} {
		fw := c.fw
		res, err := inv.Invoke(context.Background(), f, invoker.Request{Payload: []byte(c.body), Forward: &fw})
		if err != nil {
			t.Fatalf("%s: %v", fw.Method, err)
		}
		got := <-calls
		if got.method != fw.Method || got.path != c.wantPath || got.query != fw.RawQuery || got.ct != fw.ContentType || got.body != c.body {
			t.Errorf("%s: the function got %+v", fw.Method, got)
		}
		if fw.Method == "PUT" && (len(got.cookies) != 2 || got.cookies[0] != "one" || got.cookies[1] != "two") {
			t.Errorf("repeated header lines: %q", got.cookies)
		}
		if res.Status != http.StatusAccepted || len(res.Header.Values("Set-Cookie")) != 2 || res.Header.Get("Grip-Hold") != "stream" {
			t.Errorf("%s: answer %d %v", fw.Method, res.Status, res.Header)
		}
	}
	// An ordinary invoke keeps no answer header.
	res, err := inv.Invoke(context.Background(), f, invoker.Request{Payload: []byte("{}")})
	<-calls
	if err != nil || res.Header != nil {
		t.Errorf("plain invoke: %v %v", res.Header, err)
	}
}
