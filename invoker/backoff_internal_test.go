package invoker

import (
	"testing"
	"time"

	"github.com/sseedge/sseedge/registry"
)

func TestBackoffIsFullJitterUnderTheCap(t *testing.T) {
	r := registry.Retry{BackoffBase: registry.Duration(100 * time.Millisecond), BackoffCap: registry.Duration(time.Second)}
	for n, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceiling *= time.Millisecond
		var lo, hi time.Duration = ceiling, 0
		for range 2000 {
			d := backoff(n, r)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > ceiling/10 || hi < ceiling*9/10 {
			t.Errorf("backoff(%d) spans [%v, %v]; want most of [0, %v] (full jitter)", n, lo, hi, ceiling)
		}
	}
	if d := backoff(62, r); d > time.Second {
		t.Fatalf("backoff(62) = %v overflows the cap", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": -1, "3": 3 * time.Second, " 0 ": 0, "soon": -1, "-1": -1,
		"Wed, 21 Oct 2015 07:28:00 GMT": -1} {
		if got := parseRetryAfter([]byte(in)); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
