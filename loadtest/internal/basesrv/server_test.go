package basesrv

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEncodeFrame(t *testing.T) {
	cases := []struct {
		id, event, data, want string
	}{
		{"1", "greet", "hi", "id: 1\nevent: greet\ndata: hi\n\n"},
		{"", "", "", "data: \n\n"},
		{"7", "", "a\nb\r\nc\rd", "id: 7\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"", "x", "trail\n", "event: x\ndata: trail\ndata: \n\n"},
	}
	for _, c := range cases {
		if got := string(EncodeFrame(nil, c.id, c.event, []byte(c.data))); got != c.want {
			t.Errorf("EncodeFrame(%q,%q,%q) = %q, want %q", c.id, c.event, c.data, got, c.want)
		}
	}
}

func TestNormalizeTopic(t *testing.T) {
	for in, want := range map[string]string{"pets": "pets", "/pets/dogs/": "pets/dogs"} {
		if got, err := normalizeTopic(in); err != nil || got != want {
			t.Errorf("normalizeTopic(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/", "a//b", "a/../b", "./a"} {
		if _, err := normalizeTopic(bad); err == nil {
			t.Errorf("normalizeTopic(%q) accepted", bad)
		}
	}
}

// TestHierarchicalDelivery checks the contract points the load tests rely on: headers, the retry hint,
// that a parent topic sees a child's events, that a sibling does not, and the publish answer.
func TestHierarchicalDelivery(t *testing.T) {
	srv := New(Config{Heartbeat: -1}, nil)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	open := func(topic string) (*bufio.Reader, func()) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/subscribe/"+topic, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("subscribe %s: %v", topic, err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
			resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("subscribe %s: status %d headers %v", topic, resp.StatusCode, resp.Header)
		}
		br := bufio.NewReader(resp.Body)
		if l, _ := br.ReadString('\n'); l != "retry: 3000\n" {
			t.Fatalf("first line %q", l)
		}
		_, _ = br.ReadString('\n')
		return br, func() { resp.Body.Close() }
	}
	parent, closeParent := open("pets")
	defer closeParent()
	sibling, closeSibling := open("plants")
	defer closeSibling()

	resp, err := http.Post(ts.URL+"/publish/pets/dogs", "application/json",
		strings.NewReader(`{"event":"bark","data":{"loud": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.ID != "1" {
		t.Fatalf("publish answer %+v, %v", got, err)
	}
	resp.Body.Close()

	var frame strings.Builder
	for {
		l, err := parent.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		frame.WriteString(l)
		if l == "\n" {
			break
		}
	}
	if want := "id: 1\nevent: bark\ndata: {\"loud\":true}\n\n"; frame.String() != want {
		t.Fatalf("frame %q, want %q", frame.String(), want)
	}

	resp, err = http.Post(ts.URL+"/publish/plants", "application/json", strings.NewReader(`{"event":"e","data":"x","id":"own"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if l, _ := sibling.ReadString('\n'); l != "id: own\n" {
		t.Fatalf("sibling got %q first, want its own event", l)
	}

	resp, err = http.Post(ts.URL+"/publish/", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad topic status %d", resp.StatusCode)
	}
	if s := srv.Stats(); s.Published != 2 || s.Dropped != 0 || s.Subscribers != 2 {
		t.Fatalf("stats %+v", s)
	}
}
