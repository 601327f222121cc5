package registry_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/registry/registrytest"
)

func TestMemoryStoreConformance(t *testing.T) {
	registrytest.Run(t, func(*testing.T) registry.Store { return new(registry.MemoryStore) })
}

func TestNormalizeDefaults(t *testing.T) {
	fn, err := registry.Function{Name: "hello", Endpoint: "http://127.0.0.1:9000/upper"}.Normalize()
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	if fn.Method != "POST" || fn.Timeout.Std() != 30*time.Second {
		t.Errorf("method/timeout = %s/%s", fn.Method, fn.Timeout)
	}
	r := fn.Retry
	if r.MaxAttempts != 3 || r.BackoffBase.Std() != 100*time.Millisecond || r.BackoffCap.Std() != 2*time.Second {
		t.Errorf("retry defaults = %+v", r)
	}
	if len(r.Statuses) != 4 {
		t.Errorf("statuses = %v", r.Statuses)
	}
	b := fn.Breaker
	if b.ConsecutiveFailures != 5 || b.OpenDuration.Std() != 30*time.Second || b.HalfOpenProbes != 1 || b.FailureRatio != 0 {
		t.Errorf("breaker defaults = %+v", b)
	}
}

func TestNormalizeKeepsExplicitEmptyStatuses(t *testing.T) {
	fn, err := registry.DecodeFunction([]byte(`{"name":"a","endpoint":"http://x/","retry":{"statuses":[]}}`))
	if err != nil {
		t.Fatalf("DecodeFunction: %v", err)
	}
	if fn.Retry.Statuses == nil || len(fn.Retry.Statuses) != 0 {
		t.Fatalf("statuses = %#v, want empty", fn.Retry.Statuses)
	}
}

func TestValidateNamesField(t *testing.T) {
	cases := []struct {
		body  string
		field string
	}{
		{`{"name":"-bad","endpoint":"http://x/"}`, "name"},
		{`{"name":"` + strings.Repeat("a", 65) + `","endpoint":"http://x/"}`, "name"},
		{`{"name":"a"}`, "endpoint"},
		{`{"name":"a","endpoint":"/relative"}`, "endpoint"},
		{`{"name":"a","endpoint":"ftp://x/"}`, "endpoint"},
		{`{"name":"a","endpoint":"http://x/","endpoints":["http://y/"]}`, "endpoint"},
		{`{"name":"a","endpoints":["http://x/","x"]}`, "endpoints[1]"},
		{`{"name":"a","endpoints":["http://x/","http://x/"]}`, "endpoints[1]"},
		{`{"name":"a","endpoint":"http://x/","method":"TRACE"}`, "method"},
		{`{"name":"a","endpoint":"http://x/","timeout":-1}`, "timeout"},
		{`{"name":"a","endpoint":"http://x/","timeout":"soon"}`, "timeout"},
		{`{"name":"a","endpoint":"http://x/","headers":{"Content-Length":"1"}}`, "headers.Content-Length"},
		{`{"name":"a","endpoint":"http://x/","headers":{"Bad Name":"1"}}`, "headers.Bad Name"},
		{`{"name":"a","endpoint":"http://x/","health_endpoint":"health"}`, "health_endpoint"},
		{`{"name":"a","endpoint":"http://x/","retry":{"max_attempts":-1}}`, "retry.max_attempts"},
		{`{"name":"a","endpoint":"http://x/","retry":{"max_attempts":11}}`, "retry.max_attempts"},
		{`{"name":"a","endpoint":"http://x/","retry":{"backoff_base":-0.1}}`, "retry.backoff_base"},
		{`{"name":"a","endpoint":"http://x/","retry":{"backoff_base":"1s","backoff_cap":"10ms"}}`, "retry.backoff_cap"},
		{`{"name":"a","endpoint":"http://x/","retry":{"backoff_cap":"abc"}}`, "retry.backoff_cap"},
		{`{"name":"a","endpoint":"http://x/","retry":{"statuses":[200]}}`, "retry.statuses[0]"},
		{`{"name":"a","endpoint":"http://x/","retry":{"attempt_timeout":60}}`, "retry.attempt_timeout"},
		{`{"name":"a","endpoint":"http://x/","breaker":{"consecutive_failures":-2}}`, "breaker.consecutive_failures"},
		{`{"name":"a","endpoint":"http://x/","breaker":{"failure_ratio":1.5}}`, "breaker.failure_ratio"},
		{`{"name":"a","endpoint":"http://x/","breaker":{"open_duration":-3}}`, "breaker.open_duration"},
		{`{"name":"a","endpoint":"http://x/","breaker":{"half_open_probes":-1}}`, "breaker.half_open_probes"},
		{`{"name":"a","endpoint":"http://x/","timout":3}`, "timout"},
		{`{"name":"a","endpoint":"http://x/","mcp":"yes"}`, "mcp"},
		{`{"name":"a","endpoint":"http://x/","grip":1}`, "grip"},
		{`{"name":"a","endpoint":"http://x/","grip":true,"mcp":true}`, "grip"},
	}
	for _, c := range cases {
		_, err := registry.DecodeFunction([]byte(c.body))
		var fe *registry.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a FieldError", c.body, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field = %q (%v), want %q", c.body, fe.Field, err, c.field)
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: message %q does not name %q", c.body, err, c.field)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, body := range []string{`{`, `[1]`, `"x"`, `{"name":"a"} {}`} {
		if _, err := registry.DecodeFunction([]byte(body)); !errors.Is(err, registry.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", body, err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	cases := map[string]time.Duration{
		`1.5`: 1500 * time.Millisecond, `"1500ms"`: 1500 * time.Millisecond, `"2"`: 2 * time.Second, `30`: 30 * time.Second,
	}
	for in, want := range cases {
		var d registry.Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.Std() != want {
			t.Errorf("%s: got %v, %v; want %v", in, d, err, want)
		}
	}
	out, _ := json.Marshal(registry.Duration(1500 * time.Millisecond))
	if string(out) != "1.5" {
		t.Errorf("Marshal = %s, want 1.5", out)
	}
	var d registry.Duration
	if err := json.Unmarshal([]byte(`1e300`), &d); err == nil {
		t.Errorf("1e300 accepted as %v", d)
	}
}

func TestStoredFormRoundTrips(t *testing.T) {
	fn, err := registry.DecodeFunction([]byte(`{"name":"a","endpoints":["http://x/","http://y/"],"timeout":"250ms",
		"retry":{"statuses":[]},"breaker":{"failure_ratio":0.5},"mcp":true,"idempotent":true}`))
	if err != nil {
		t.Fatalf("DecodeFunction: %v", err)
	}
	raw, err := json.Marshal(fn)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := registry.DecodeFunction(raw)
	if err != nil {
		t.Fatalf("DecodeFunction(%s): %v", raw, err)
	}
	if back.Timeout != fn.Timeout || len(back.Retry.Statuses) != 0 || back.Breaker.MinRequests != 10 || !back.MCP || !back.Idempotent {
		t.Fatalf("round trip changed the function: %s -> %+v", raw, back)
	}
}

func TestRedacted(t *testing.T) {
	fn, err := registry.Function{
		Name:     "a",
		Endpoint: "https://user:hunter2@example.com/f?api_key=abc&x=1",
		Headers: map[string]string{
			"Authorization": "Bearer s3cret", "X-API-KEY": "k", "x-auth-token": "t", "Cookie": "c",
			"X-Client-Secret": "s", "X-Db-Password": "p", "X-Team": "blue",
		},
	}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	red := fn.Redacted()
	for name, v := range red.Headers {
		want := registry.RedactedValue
		if name == "X-Team" {
			want = "blue"
		}
		if v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if strings.Contains(red.Endpoint, "hunter2") || strings.Contains(red.Endpoint, "abc") || !strings.Contains(red.Endpoint, "x=1") {
		t.Errorf("endpoint = %q", red.Endpoint)
	}
	if fn.Headers["Authorization"] != "Bearer s3cret" {
		t.Errorf("Redacted changed the original")
	}
}

func TestValidNameMatchesPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$`)
	for _, s := range []string{"", "a", "A-b_c", "_a", "-a", "a.b", "a b", "é", strings.Repeat("x", 64), strings.Repeat("x", 65), "9z"} {
		if registry.ValidName(s) != re.MatchString(s) {
			t.Errorf("ValidName(%q) = %v, regexp says %v", s, registry.ValidName(s), re.MatchString(s))
		}
	}
}
