package edge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// errBadPath is what every path refusal wraps.
var errBadPath = errors.New("bad path")

// canonicalPath decodes a request path once into the one form that the auth guard, the router and the
// topic and client-ID parsers all read. Paths that could decode or clean to something else are refused
// rather than rewritten, so no two readers can ever disagree about where a request goes:
//   - an encoded '/' (%2F), which would make one segment look like two after decoding;
//   - '.' and '..' segments, raw or encoded, which fasthttp would clean away;
//   - empty segments ("//"), which fasthttp would fold (a trailing '/' is kept: "/admin/");
//   - '%' after decoding (a raw %25), which a second decoder would read as an escape;
//   - control characters.
func canonicalPath(raw string) (string, error) {
	if !strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: must start with '/'", errBadPath)
	}
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%2F") {
		return "", fmt.Errorf("%w: encoded '/' (%%2F)", errBadPath)
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("%w: malformed percent-encoding", errBadPath)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%w: control character", errBadPath)
		case c == '%':
			return "", fmt.Errorf("%w: '%%' is not allowed in paths", errBadPath)
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			return "", fmt.Errorf("%w: %q segment", errBadPath, seg)
		case seg == "" && i < len(segs)-1:
			return "", fmt.Errorf("%w: empty segment", errBadPath)
		}
	}
	return p, nil
}

// canonical puts the canonical path in the request's URI before anything reads it, or refuses the
// request with 400 bad_path. With it in place, fasthttp's cleaned path (ctx.Path) and the raw path
// the router matches (URI().PathOriginal) are the same string.
func (s *Server) canonical(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		p, err := canonicalPath(string(ctx.Request.URI().PathOriginal()))
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, "bad_path", err.Error())
			return
		}
		ctx.Request.URI().SetPath(p)
		next(ctx)
	}
}
