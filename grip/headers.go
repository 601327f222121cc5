package grip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// single returns the one value of a header that takes one.
func single(name string, lines []string) (string, error) {
	if len(lines) != 1 {
		return "", upstream.errorf(CodeMalformed, name, "given %d times", len(lines))
	}
	return strings.TrimSpace(lines[0]), nil
}

// seconds reads a non-negative whole number of seconds, bounded to a day.
func seconds(v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 86400 {
		return 0, fmt.Errorf("%d is not within 0..86400", n)
	}
	return time.Duration(n) * time.Second, nil
}

func parseChannels(lines []string, lim Limits) ([]Channel, error) {
	const s = upstream
	els, err := parseList(lines)
	if err != nil {
		return nil, s.wrap(CodeMalformed, HeaderChannel, err, "does not parse")
	}
	out := make([]Channel, 0, min(len(els), lim.MaxChannels))
	seen := make(map[string]int, len(els))
	for _, el := range els {
		topic, err := ChannelTopic(el.value)
		if err != nil {
			return nil, s.wrap(CodeBadChannel, HeaderChannel, err, "channel %q", el.value)
		}
		c := Channel{Name: el.value, Topic: topic}
		for _, p := range el.params {
			switch p.name {
			case "prev-id":
				if !p.set || p.value == "" {
					return nil, s.errorf(CodeMalformed, HeaderChannel, "channel %q: prev-id without a value", c.Name)
				}
				c.PrevID = p.value
			case "filter":
				return nil, s.errorf(CodeUnsupported, HeaderChannel, "channel %q: filters are not supported", c.Name)
			default:
				return nil, s.errorf(CodeMalformed, HeaderChannel, "channel %q: unknown parameter %q", c.Name, p.name)
			}
		}
		if i, dup := seen[c.Name]; dup {
			if out[i].PrevID != c.PrevID {
				return nil, s.errorf(CodeMalformed, HeaderChannel, "channel %q given twice with different prev-ids", c.Name)
			}
			continue
		}
		if len(out) == lim.MaxChannels {
			return nil, s.errorf(CodeTooMany, HeaderChannel, "more than %d channels", lim.MaxChannels)
		}
		seen[c.Name] = len(out)
		out = append(out, c)
	}
	return out, nil
}

// parseKeepAlive reads "content; format=raw|cstring|base64; timeout=N; mode=idle|interval". Its content
// may hold commas, so it is one element, not a list.
func parseKeepAlive(lines []string, lim Limits) (*KeepAlive, error) {
	const s = upstream
	v, err := single(HeaderKeepAlive, lines)
	if err != nil {
		return nil, err
	}
	el, err := parseElement(v)
	if err != nil {
		return nil, s.wrap(CodeMalformed, HeaderKeepAlive, err, "does not parse")
	}
	if el.value == "" {
		return nil, s.errorf(CodeMalformed, HeaderKeepAlive, "no content")
	}
	ka := &KeepAlive{Interval: DefaultKeepAliveInterval}
	format := "raw"
	for _, p := range el.params {
		switch p.name {
		case "format":
			format = p.value
		case "timeout":
			d, err := seconds(p.value)
			if err != nil {
				return nil, s.wrap(CodeMalformed, HeaderKeepAlive, err, "timeout")
			}
			ka.Interval = max(d, minKeepAliveInterval)
		case "mode":
			switch p.value {
			case "idle":
				ka.Mode = KeepAliveIdle
			case "interval":
				ka.Mode = KeepAliveInterval
			default:
				return nil, s.errorf(CodeMalformed, HeaderKeepAlive, "mode %q is neither idle nor interval", p.value)
			}
		default:
			return nil, s.errorf(CodeMalformed, HeaderKeepAlive, "unknown parameter %q", p.name)
		}
	}
	var content []byte
	switch format {
	case "raw":
		content = []byte(el.value)
	case "cstring":
		if content, err = unescapeCString(el.value); err != nil {
			return nil, s.wrap(CodeMalformed, HeaderKeepAlive, err, "cstring content")
		}
	case "base64":
		if content, err = base64.StdEncoding.DecodeString(el.value); err != nil {
			return nil, s.wrap(CodeMalformed, HeaderKeepAlive, err, "base64 content")
		}
	default:
		return nil, s.errorf(CodeMalformed, HeaderKeepAlive, "format %q is none of raw, cstring, base64", format)
	}
	if len(content) > lim.MaxKeepAliveBytes {
		return nil, s.errorf(CodeTooLarge, HeaderKeepAlive, "content of %d bytes, more than %d", len(content), lim.MaxKeepAliveBytes)
	}
	if ka.Content, err = sseSafe(content); err != nil {
		return nil, s.wrap(CodeMalformed, HeaderKeepAlive, err, "content")
	}
	return ka, nil
}

// unescapeCString decodes GRIP's cstring format: \\, \r, \n, \t and \xHH escapes.
func unescapeCString(v string) ([]byte, error) {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i >= len(v) {
			return nil, errors.New("ends inside an escape")
		}
		switch v[i] {
		case '\\':
			out = append(out, '\\')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'x':
			if i+2 >= len(v) {
				return nil, errors.New("short \\x escape")
			}
			b, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape: %w", err)
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", v[i])
		}
	}
	return out, nil
}

// sseSafe checks that keep-alive bytes are SSE text that leaves a client's state alone: comment lines
// and data, event and retry fields, no id (it would move Last-Event-ID off the edge's cursor), no NUL.
// Content left inside an event gets the blank line that ends it.
func sseSafe(b []byte) ([]byte, error) {
	open := false // a field line was seen since the last blank line
	rest := string(b)
	for rest != "" {
		i := strings.IndexAny(rest, "\r\n")
		line := rest
		if i < 0 {
			rest = ""
		} else {
			line = rest[:i]
			if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
				i++
			}
			rest = rest[i+1:]
		}
		if strings.IndexByte(line, 0) >= 0 {
			return nil, errors.New("holds a NUL")
		}
		switch field, _, _ := strings.Cut(line, ":"); {
		case line == "":
			open = false
		case line[0] == ':':
		case field == "data", field == "event", field == "retry":
			open = true
		case field == "id":
			return nil, errors.New("an id field would move the client's Last-Event-ID")
		default:
			return nil, fmt.Errorf("unknown SSE field %q", field)
		}
		if i < 0 && line != "" {
			b = append(b[:len(b):len(b)], '\n') // the last line had no line end
		}
	}
	if open {
		b = append(b[:len(b):len(b)], '\n')
	}
	return b, nil
}

// parseStatus reads Grip-Status: "code" or "code reason".
func parseStatus(lines []string) (int, string, error) {
	const s = upstream
	v, err := single(HeaderStatus, lines)
	if err != nil {
		return 0, "", err
	}
	codeStr, reason, _ := strings.Cut(v, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || code < 100 || code > 599 {
		return 0, "", s.errorf(CodeMalformed, HeaderStatus, "%q is not a status code within 100..599", codeStr)
	}
	for i := 0; i < len(reason); i++ {
		if c := reason[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return 0, "", s.errorf(CodeMalformed, HeaderStatus, "control character in the reason")
		}
	}
	return code, strings.TrimSpace(reason), nil
}

// hopByHop are the headers of one connection, never forwarded (RFC 9110 7.6.1), with Content-Length,
// which whoever writes the body sets.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true,
}

// clientHeader is the answer's header as the client gets it (see Instruct.Header).
func clientHeader(h http.Header, expose []string, hold Hold) (http.Header, error) {
	var allow map[string]bool
	if len(expose) > 0 {
		els, err := parseList(expose)
		if err != nil {
			return nil, upstream.wrap(CodeMalformed, HeaderExposeHeaders, err, "does not parse")
		}
		allow = make(map[string]bool, len(els))
		for _, el := range els {
			if !isToken(el.value) || len(el.params) > 0 {
				return nil, upstream.errorf(CodeMalformed, HeaderExposeHeaders, "%q is not a header name", el.value)
			}
			allow[http.CanonicalHeaderKey(el.value)] = true
		}
	}
	conn := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			conn[http.CanonicalHeaderKey(strings.TrimSpace(f))] = true
		}
	}
	out := http.Header{}
	for name, vs := range h {
		c := http.CanonicalHeaderKey(name)
		switch {
		case strings.HasPrefix(c, "Grip-"), hopByHop[c], conn[c]:
		case hold == HoldStream && (c == "Content-Type" || c == "Content-Encoding"):
		case allow != nil && !allow[c]:
		default:
			out[c] = append(out[c], vs...)
		}
	}
	return out, nil
}

// ForwardRequestHeader says whether the edge forwards a client's request header to a GRIP function:
// not the hop-by-hop ones, not Host or Content-Length (the call sets its own), and no Grip-* header, so
// a client can never pass a Grip-Sig of its own (the edge sets Grip-Sig with Signer). Cookies,
// Authorization, Last-Event-ID and the rest go through.
func ForwardRequestHeader(name string) bool {
	c := http.CanonicalHeaderKey(name)
	return !hopByHop[c] && c != "Host" && !strings.HasPrefix(c, "Grip-")
}
