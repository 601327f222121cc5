package transport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrBadPath is what every path refusal wraps.
var ErrBadPath = errors.New("bad path")

// CanonicalPath decodes a request path once into the one form that the auth guard, the router and the
// topic and client-ID parsers all read. Paths that could decode or clean to something else are refused
// rather than rewritten, so no two readers can ever disagree about where a request goes:
//   - an encoded '/' (%2F), which would make one segment look like two after decoding;
//   - '.' and '..' segments, raw or encoded, which fasthttp would clean away;
//   - empty segments ("//"), which fasthttp would fold (a trailing '/' is kept: "/admin/");
//   - '%' after decoding (a raw %25), which a second decoder would read as an escape;
//   - control characters.
func CanonicalPath(raw string) (string, error) {
	if !strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: must start with '/'", ErrBadPath)
	}
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%2F") {
		return "", fmt.Errorf("%w: encoded '/' (%%2F)", ErrBadPath)
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("%w: malformed percent-encoding", ErrBadPath)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%w: control character", ErrBadPath)
		case c == '%':
			return "", fmt.Errorf("%w: '%%' is not allowed in paths", ErrBadPath)
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			return "", fmt.Errorf("%w: %q segment", ErrBadPath, seg)
		case seg == "" && i < len(segs)-1:
			return "", fmt.Errorf("%w: empty segment", ErrBadPath)
		}
	}
	return p, nil
}
