package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sseedge/sseedge/api"
)

func TestRegisterListGetDelete(t *testing.T) {
	e := newEdge(t, nil)
	body := `{"name":"upper","endpoint":"http://127.0.0.1:9000/upper","timeout":1.5,"description":"shout",
		"headers":{"Authorization":"Bearer s3cret-token","X-Team":"blue"}}`
	st, _, b := e.do("POST", "/admin/functions", body)
	if st != 201 {
		t.Fatalf("create = %d %s", st, b)
	}
	var created map[string]any
	json.Unmarshal(b, &created)
	if created["name"] != "upper" || created["timeout"] != 1.5 || created["method"] != "POST" {
		t.Fatalf("created = %s", b)
	}
	if st, _, b = e.do("POST", "/admin/functions", body); st != 200 {
		t.Fatalf("replace = %d %s, want 200", st, b)
	}
	e.register(`{"name":"alpha","endpoints":["http://127.0.0.1:9001/a","http://127.0.0.1:9002/a"]}`)

	st, _, b = e.do("GET", "/admin/functions", "")
	var list api.FunctionList
	if err := json.Unmarshal(b, &list); st != 200 || err != nil {
		t.Fatalf("list = %d %s (%v)", st, b, err)
	}
	if list.Count != 2 || list.Functions[0].Name != "alpha" || list.Functions[1].Name != "upper" {
		t.Fatalf("list = %s", b)
	}
	if h := list.Functions[0].Health; !h.Healthy || len(h.Endpoints) != 2 || h.Endpoints[1].BreakerState != "closed" {
		t.Fatalf("alpha health = %+v", h)
	}

	st, _, b = e.do("GET", "/admin/functions/upper", "")
	var one api.FunctionView
	if err := json.Unmarshal(b, &one); st != 200 || err != nil {
		t.Fatalf("get = %d %s", st, b)
	}
	if one.Description != "shout" || one.Health.Endpoints[0].BreakerState != "closed" || one.Headers["X-Team"] != "blue" {
		t.Fatalf("get = %s", b)
	}

	if st, _, b = e.do("DELETE", "/admin/functions/upper", ""); st != 204 {
		t.Fatalf("delete = %d %s", st, b)
	}
	st, _, b = e.do("GET", "/admin/functions/upper", "")
	if _, code := errorBody(t, b); st != 404 || code != "not_found" {
		t.Fatalf("get deleted = %d %s", st, b)
	}
	st, _, b = e.do("DELETE", "/admin/functions/upper", "")
	if _, code := errorBody(t, b); st != 404 || code != "not_found" {
		t.Fatalf("delete again = %d %s", st, b)
	}
}

func TestInvalidRegistrationsNameTheField(t *testing.T) {
	e := newEdge(t, func(c *api.Config) { c.MaxBodyBytes = 4096 })
	cases := map[string]string{
		`{"name":"bad name!","endpoint":"http://x/"}`: "name",
		`{"name":"a"}`:                                                          "endpoint",
		`{"name":"a","endpoint":"not-a-url"}`:                                   "endpoint",
		`{"name":"a","endpoint":"ftp://x/f"}`:                                   "endpoint",
		`{"name":"a","endpoints":["http://x/","/rel"]}`:                         "endpoints[1]",
		`{"name":"a","endpoint":"http://x/","method":"FETCH"}`:                  "method",
		`{"name":"a","endpoint":"http://x/","timeout":0.0000000001}`:            "timeout",
		`{"name":"a","endpoint":"http://x/","timeout":-5}`:                      "timeout",
		`{"name":"a","endpoint":"http://x/","retry":{"max_attempts":0.5}}`:      "retry.max_attempts",
		`{"name":"a","endpoint":"http://x/","retry":{"statuses":[99]}}`:         "retry.statuses[0]",
		`{"name":"a","endpoint":"http://x/","breaker":{"failure_ratio":2}}`:     "breaker.failure_ratio",
		`{"name":"a","endpoint":"http://x/","breaker":{"open_duration":"-1s"}}`: "breaker.open_duration",
		`{"name":"a","endpoint":"http://x/","headers":{"Host":"evil"}}`:         "headers.Host",
	}
	for body, field := range cases {
		st, _, b := e.do("POST", "/admin/functions", body)
		msg, code := errorBody(t, b)
		if st != 400 || code != "invalid_function" || !strings.Contains(msg, "field "+field) {
			t.Errorf("%s: %d %s, want 400 invalid_function naming %s", body, st, b, field)
		}
	}
	st, _, b := e.do("POST", "/admin/functions", `{"name":`)
	if _, code := errorBody(t, b); st != 400 || code != "bad_json" {
		t.Errorf("malformed: %d %s", st, b)
	}
	st, _, b = e.do("POST", "/admin/functions", fmt.Sprintf(`{"name":"a","endpoint":"http://x/","description":%q}`, strings.Repeat("x", 5000)))
	if _, code := errorBody(t, b); st != 413 || code != "body_too_large" {
		t.Errorf("too large: %d %s", st, b)
	}
	if _, _, b := e.do("GET", "/admin/functions", ""); !strings.Contains(string(b), `"count":0`) {
		t.Errorf("something invalid was stored: %s", b)
	}
}

func TestSecretsNeverEchoed(t *testing.T) {
	e := newEdge(t, nil)
	secrets := []string{"Bearer hunter2", "k-123456", "sess-abc", "pw-xyz", "urlpass"}
	body := `{"name":"secretive","endpoint":"https://bob:urlpass@example.com/f","headers":{
		"Authorization":"Bearer hunter2","X-Api-Key":"k-123456","Cookie":"sess-abc","X-DB-Password":"pw-xyz","X-Region":"eu"}}`
	_, _, created := e.do("POST", "/admin/functions", body)
	_, _, listed := e.do("GET", "/admin/functions", "")
	_, _, got := e.do("GET", "/admin/functions/secretive", "")
	for _, out := range [][]byte{created, listed, got} {
		for _, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("secret %q echoed in %s", s, out)
			}
		}
		if !strings.Contains(string(out), `"X-Region":"eu"`) || !strings.Contains(string(out), "[redacted]") {
			t.Errorf("redaction went too far or not at all: %s", out)
		}
	}
	stored, err := e.store.Get(t.Context(), "secretive")
	if err != nil || stored.Headers["Authorization"] != "Bearer hunter2" {
		t.Fatalf("the store must keep the real secret for calls: %+v, %v", stored.Headers, err)
	}
}
