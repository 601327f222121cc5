package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limits of the sample handlers.
const (
	maxBody  = 1 << 20
	maxSleep = 10 * time.Minute
)

// NewHandler returns the sample functions:
//
//	/upper          {"text": "..."} (or a JSON string, or raw text) -> {"text": "UPPER"}
//	/echo           the body, its content type and the edge's headers, as JSON
//	/sleep?ms=N     answers after N milliseconds (or when the caller gives up)
//	/fail?status=N  answers status N (default 500)
//	/health         200 {"status":"ok"}
//	/grip/...       the GRIP function (see NewGripHandler), checking Grip-Sig with $GRIP_KEY
func NewHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/upper", upper)
	mux.Handle("/mcp", NewMCPHandler())
	mux.Handle("/grip/", NewGripHandler([]byte(os.Getenv("GRIP_KEY"))))
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/sleep", sleep)
	mux.HandleFunc("/fail", fail)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the caller is gone if this fails
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
		return nil, false
	}
	return b, true
}

// upper upper-cases the text it is given.
func upper(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	text := string(body)
	var obj struct {
		Text *string `json:"text"`
	}
	var str string
	switch {
	case json.Unmarshal(body, &obj) == nil && obj.Text != nil:
		text = *obj.Text
	case json.Unmarshal(body, &str) == nil:
		text = str
	}
	writeJSON(w, http.StatusOK, map[string]string{"text": strings.ToUpper(text)})
}

// echo answers with what it received, so the edge's behaviour can be seen from outside.
func echo(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var payload any = string(body)
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && json.Valid(trimmed) {
		payload = json.RawMessage(trimmed)
	}
	headers := map[string]string{}
	for _, h := range []string{"X-Invocation-Id", "X-Client-Id", "Traceparent"} {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"method":       r.Method,
		"content_type": r.Header.Get("Content-Type"),
		"body":         payload,
		"headers":      headers,
	})
}

// sleep answers after ?ms= milliseconds, or stops early when the caller goes away.
func sleep(w http.ResponseWriter, r *http.Request) {
	if _, ok := readBody(w, r); !ok { // reading the body lets net/http notice a caller leaving
		return
	}
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxSleep {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("ms must be 0..%d", maxSleep.Milliseconds())})
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]int{"slept_ms": ms})
	case <-r.Context().Done():
	}
}

// fail answers with ?status= (default 500).
func fail(w http.ResponseWriter, r *http.Request) {
	status := http.StatusInternalServerError
	if s := r.URL.Query().Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status must be 100..599"})
			return
		}
		status = n
	}
	writeJSON(w, status, map[string]any{"error": "failing on purpose", "status": status})
}
