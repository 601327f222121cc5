package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrMalformed marks a registration body that is not a JSON object at all (as opposed to a JSON
// object with a wrong field, which is a *FieldError).
var ErrMalformed = errors.New("registry: malformed JSON")

// DecodeFunction parses a registration body strictly (unknown fields are refused, so a typo such as
// "timout" is not silently ignored) and normalizes it. A problem with one field comes back as a
// *FieldError naming it; a body that is not JSON wraps ErrMalformed.
func DecodeFunction(body []byte) (Function, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var f Function
	if err := dec.Decode(&f); err != nil {
		return Function{}, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Function{}, fmt.Errorf("%w: trailing data after the object", ErrMalformed)
	}
	return f.Normalize()
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("%w: expected an object, got %s", ErrMalformed, typeErr.Value)
		}
		return &FieldError{Field: field, Reason: "cannot use " + typeErr.Value + " here"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return &FieldError{Field: name, Reason: "unknown field"}
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}
