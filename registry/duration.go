package registry

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Duration is a time.Duration that reads JSON written by people: a number of seconds, which may be
// fractional (1.5), or a Go duration string ("1500ms", "2s"). It writes itself back as a number of
// seconds, the unit of the seed API, so a stored function round-trips unchanged.
type Duration time.Duration

// maxDurationSeconds bounds what a JSON number may ask for, so a float never overflows int64 nanos.
const maxDurationSeconds = float64(math.MaxInt64) / float64(time.Second)

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as a Go duration ("1.5s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON accepts a number of seconds or a Go duration string. A value of the wrong shape is
// reported as a *json.UnmarshalTypeError, which encoding/json fills with the field path, so callers
// can name the field ("retry.backoff_base") in their answer.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	bad := func(what string) error {
		return &json.UnmarshalTypeError{Value: what, Type: reflect.TypeFor[Duration]()}
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad("string")
		}
		if v, err := time.ParseDuration(s); err == nil {
			*d = Duration(v)
			return nil
		}
		// "1.5" in quotes is still seconds; anything else is not a duration.
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(secs) || math.Abs(secs) > maxDurationSeconds {
			return bad("string " + strconv.Quote(s))
		}
		return d.setSeconds(secs, bad("string "+strconv.Quote(s)))
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return bad("value " + string(b))
	}
	if math.IsNaN(secs) || math.Abs(secs) > maxDurationSeconds {
		return bad("number " + string(b))
	}
	return d.setSeconds(secs, bad("number "+string(b)))
}

// setSeconds stores secs, refusing a non-zero value that would round to nothing (and so silently
// become "use the default").
func (d *Duration) setSeconds(secs float64, tooSmall error) error {
	v := Duration(secs * float64(time.Second))
	if v == 0 && secs != 0 {
		return tooSmall
	}
	*d = v
	return nil
}
