// Package clientid is the one rule for client IDs, shared by the streams that carry them (/sse/{id}),
// the calls that deliver to them (/clients/{id}/events, async invokes) and the streams other protocols
// hold: an ID one of them accepts, every other accepts too, so nothing is accepted at one door and then
// undeliverable at another.
package clientid

import (
	"errors"
	"fmt"
)

// MaxLen is the longest client ID, in bytes.
const MaxLen = 128

// ErrInvalid is wrapped by every refusal.
var ErrInvalid = errors.New("invalid client ID")

// Rule says what Check accepts, for error messages.
const Rule = "client ID must be 1-128 bytes, without spaces, control characters, '/' or '%'"

// Check reports whether id is a client ID: it travels as one path segment, which the edge decodes once
// and refuses '%' in (edge/path.go), and as a header value (X-Client-Id) and a log field.
func Check(id string) error {
	if id == "" || len(id) > MaxLen {
		return fmt.Errorf("%w: %s", ErrInvalid, Rule)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c == 0x7f || c == '/' || c == '%' {
			return fmt.Errorf("%w: %s", ErrInvalid, Rule)
		}
	}
	return nil
}
