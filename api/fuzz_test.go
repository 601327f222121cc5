package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/sseedge/sseedge/api"
	"github.com/sseedge/sseedge/invoker"
	"github.com/sseedge/sseedge/registry"
)

// FuzzInvokeBody feeds arbitrary bytes as the body of POST /invoke/echo through the real router and
// handler, with a function that echoes its request body. Whatever the body:
//   - the handler does not panic;
//   - the answer is JSON with a 2xx, 4xx or 5xx status, never 500 (an internal error);
//   - a 4xx/5xx answer is {"error": "...", "code": "..."} with both set;
//   - a body that is not a valid invoke request gets a 4xx: a 5xx is only for a well-formed request
//     whose function call failed (a tiny "timeout", say);
//   - a 200 is the function's answer, so exactly the payload the caller sent (the function sees the
//     payload as is), or null when there was none; a 202 carries an invocation_id.
func FuzzInvokeBody(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`{"payload":{"text":"hi"}}`,
		`{"payload":[1,2,3],"client_id":"c-1"}`,
		`{"payload":"x","async":true,"client_id":"c-1"}`,
		`{"payload":1,"timeout":0.5}`,
		`{"payload":1,"timeout":"2s"}`,
		`{"payload":`,
		`{"payload":1,"async":true}`,
		`{"client_id":"bad id"}`,
		`{"timeout":-1}`,
		`[]`,
		`null`,
		"\xff\xfe",
	} {
		f.Add([]byte(seed))
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	f.Cleanup(echo.Close)
	inv := invoker.New(invoker.Config{MaxIdleConnDuration: time.Second})
	f.Cleanup(inv.Close)
	store := new(registry.MemoryStore)
	fn, err := registry.Function{Name: "echo", Endpoint: echo.URL}.Normalize()
	if err != nil {
		f.Fatal(err)
	}
	if err := store.Put(context.Background(), fn); err != nil {
		f.Fatal(err)
	}
	a, err := api.New(api.Config{
		Store: store, Invoker: inv, Logger: slog.New(slog.DiscardHandler),
		Deliver: func(context.Context, string, string, []byte) error { return nil },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			f.Errorf("api.Close: %v", err)
		}
	})
	r := router.New()
	a.Register(r)
	handler := r.Handler

	f.Fuzz(func(t *testing.T, body []byte) {
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("/invoke/echo")
		req.Header.SetContentType("application/json")
		req.SetBody(body)
		var rc fasthttp.RequestCtx
		rc.Init(&req, nil, nil)
		handler(&rc)

		status := rc.Response.StatusCode()
		out := rc.Response.Body()
		if status < 200 || status >= 600 || (status >= 300 && status < 400) {
			t.Fatalf("body %q: status %d", body, status)
		}
		if status == fasthttp.StatusInternalServerError {
			t.Fatalf("body %q: 500 %s", body, out)
		}
		if !json.Valid(out) {
			t.Fatalf("body %q: %d answer %q is not JSON", body, status, out)
		}
		var in api.InvokeRequest
		wellFormed := len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &in) == nil
		switch {
		case status >= 400:
			if ct := string(rc.Response.Header.ContentType()); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("body %q: %d with Content-Type %q", body, status, ct)
			}
			var e map[string]any
			if err := json.Unmarshal(out, &e); err != nil {
				t.Fatalf("body %q: %d answer %q is not an error object: %v", body, status, out, err)
			}
			msg, _ := e["error"].(string)
			code, _ := e["code"].(string)
			if msg == "" || code == "" {
				t.Fatalf("body %q: %d answer %q lacks error or code", body, status, out)
			}
			if status >= 500 && !wellFormed {
				t.Fatalf("body %q is malformed but answered %d %s", body, status, out)
			}
		case status == fasthttp.StatusAccepted:
			var acc api.InvokeAccepted
			if err := json.Unmarshal(out, &acc); err != nil || acc.InvocationID == "" || !in.Async {
				t.Fatalf("body %q: 202 %q", body, out)
			}
		case status == fasthttp.StatusOK:
			if !wellFormed || in.Async {
				t.Fatalf("body %q: 200 %q for a request that is malformed or async", body, out)
			}
			want := []byte(in.Payload)
			if len(want) == 0 {
				want = []byte("null")
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("body %q: the function echoed %q; want the payload %q", body, out, want)
			}
		default:
			t.Fatalf("body %q: unexpected status %d %q", body, status, out)
		}
	})
}
