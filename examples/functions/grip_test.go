package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sseedge/sseedge/fanout"
	"github.com/sseedge/sseedge/grip"
)

func TestGripHandler(t *testing.T) {
	key := []byte("example-key")
	srv := httptest.NewServer(NewGripHandler(key))
	defer srv.Close()
	signer, err := grip.NewSigner(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, sig string, extra ...string) *grip.Instruct {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sig != "" {
			req.Header.Set(grip.HeaderSig, sig)
		}
		for i := 0; i < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		in, err := grip.ParseInstruct(resp.StatusCode, resp.Header, body, grip.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return in
	}
	sig, err := signer.Sign()
	if err != nil {
		t.Fatal(err)
	}

	in := get("/grip/stream?channel=news&channel=pets/dogs", sig, "Last-Event-ID", "5-2")
	if in.Hold != grip.HoldStream || in.Status != 200 {
		t.Fatalf("%+v", in)
	}
	if want := []grip.Channel{{Name: "news", Topic: "/news"}, {Name: "pets/dogs", Topic: "/pets/dogs"}}; !reflect.DeepEqual(in.Channels, want) {
		t.Errorf("channels %+v, want %+v", in.Channels, want)
	}
	if ka := in.KeepAlive; ka == nil || string(ka.Content) != ":\n\n" || ka.Interval != 25*time.Second {
		t.Errorf("keep-alive %+v", ka)
	}
	if want := []fanout.Event{{Name: "welcome", Data: []byte(`{"channels":["news","pets/dogs"],"last_event_id":"5-2"}`)}}; !reflect.DeepEqual(in.Events, want) {
		t.Errorf("events %q, want %q", in.Events, want)
	}
	if in := get("/grip/stream", sig); len(in.Channels) != 1 || in.Channels[0].Name != "news" {
		t.Errorf("default channel: %+v", in.Channels)
	}

	in = get("/grip/hello", "")
	if in.Hold != grip.HoldNone || in.Status != 200 || string(in.Body) != "{\"hello\":\"world\"}\n" {
		t.Errorf("/grip/hello: %+v", in)
	}

	expired, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "sseedge", "exp": time.Now().Add(-time.Minute).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := grip.NewSigner([]byte("other-key"), 0)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := other.Sign()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path, sig string
		status    int
	}{
		"no signature":  {"/grip/stream", "", 401},
		"another key":   {"/grip/stream", otherSig, 401},
		"expired":       {"/grip/stream", expired, 401},
		"bad channel":   {"/grip/stream?channel=a,b", sig, 400},
		"too many":      {"/grip/stream?channel=1&channel=2&channel=3&channel=4&channel=5&channel=6&channel=7&channel=8&channel=9", sig, 400},
		"empty channel": {"/grip/stream?channel=", sig, 400},
	} {
		if in := get(tc.path, tc.sig); in.Hold != grip.HoldNone || in.Status != tc.status {
			t.Errorf("%s: %+v, want a plain %d", name, in, tc.status)
		}
	}

	noKey := httptest.NewServer(NewGripHandler(nil))
	defer noKey.Close()
	resp, err := noKey.Client().Get(noKey.URL + "/grip/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("without a key: %d, want 503", resp.StatusCode)
	}
}
