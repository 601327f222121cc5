package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxGripChannels bounds the channels one /grip/stream call asks for.
const maxGripChannels = 8

// NewGripHandler returns the sample GRIP function, served at /grip/: it speaks GRIP with nothing but
// headers, as a function written for Pushpin or Fastly Fanout does. Register it with "grip": true and
// open /grip/{name}/stream on the edge (see docs/grip.md):
//
//	/grip/stream?channel=news&channel=sports  Grip-Sig checked, then Grip-Hold: stream on the channels
//	                                          (default "news") with a first event "welcome"
//	/grip/hello                               an ordinary JSON answer, no GRIP instruction
//
// key is the edge's GRIP_KEY: a call whose Grip-Sig is not an HS256 JWT of key with iss "sseedge" and a
// live exp gets 401. With no key, /grip/stream answers 503.
func NewGripHandler(key []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/grip/stream", func(w http.ResponseWriter, r *http.Request) { gripStream(w, r, key) })
	mux.HandleFunc("/grip/hello", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"hello": "world"})
	})
	return mux
}

// validGripSig says whether sig is the edge's signature: HS256 with key, iss "sseedge", exp required.
func validGripSig(sig string, key []byte) bool {
	_, err := jwt.Parse(sig, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("sseedge"), jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second))
	return err == nil
}

// gripStream answers with GRIP's instruct headers: hold the stream, on these channels, with this
// keep-alive, after this first event.
func gripStream(w http.ResponseWriter, r *http.Request, key []byte) {
	if len(key) == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "GRIP_KEY is not set: this function cannot check Grip-Sig"})
		return
	}
	if !validGripSig(r.Header.Get("Grip-Sig"), key) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Grip-Sig missing or wrong: call me through the edge"})
		return
	}
	channels := r.URL.Query()["channel"]
	if len(channels) == 0 {
		channels = []string{"news"}
	}
	if len(channels) > maxGripChannels {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "too many channels"})
		return
	}
	for _, c := range channels {
		// The header's own separators and quoting may not appear in a channel name.
		if c == "" || strings.ContainsAny(c, ",;\" \t\r\n") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad channel " + c})
			return
		}
	}
	first, _ := json.Marshal(map[string]any{"channels": channels, "last_event_id": r.Header.Get("Last-Event-ID")})
	h := w.Header()
	h.Set("Grip-Hold", "stream")
	h.Set("Grip-Channel", strings.Join(channels, ", "))
	h.Set("Grip-Keep-Alive", `:\n\n; format=cstring; timeout=25`)
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("event: welcome\ndata: " + string(first) + "\n\n")) //nolint:errcheck // the caller is gone if this fails
}
