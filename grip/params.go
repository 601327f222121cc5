package grip

import (
	"errors"
	"strings"
)

// A header element as GRIP writes them: a value, then "; name=value" parameters, values being tokens or
// quoted strings ("Grip-Channel: news; prev-id=7, sports").
type element struct {
	value  string
	params []param
}

type param struct {
	name  string // lower-cased
	value string
	set   bool // "=value" was given
}

// get returns the value of the parameter named name, and whether it is there.
func (e element) get(name string) (string, bool) {
	for _, p := range e.params {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

var errUnterminatedQuote = errors.New("unterminated quoted string")

// splitOutside splits s at each sep that is not inside a quoted string.
func splitOutside(s string, sep byte) ([]string, error) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, errUnterminatedQuote
	}
	return append(out, s[start:]), nil
}

// unquote strips one level of quoting from a quoted string ("a\"b" is a"b); other values are returned
// as they are.
func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		if strings.IndexByte(s, '"') >= 0 {
			return "", errors.New("stray quote")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i >= len(s)-1 {
				return "", errUnterminatedQuote
			}
			c = s[i]
		} else if c == '"' {
			return "", errors.New("quote inside a quoted string")
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// isToken says whether s is an HTTP token (RFC 9110 tchar+).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseElement reads one element: its value, then its parameters. A parameter name is a token, given
// at most once.
func parseElement(s string) (element, error) {
	parts, err := splitOutside(s, ';')
	if err != nil {
		return element{}, err
	}
	v, err := unquote(strings.TrimSpace(parts[0]))
	if err != nil {
		return element{}, err
	}
	el := element{value: v}
	for _, raw := range parts[1:] {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return element{}, errors.New("empty parameter")
		}
		name, value, set := strings.Cut(raw, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !isToken(name) {
			return element{}, errors.New("bad parameter name")
		}
		if _, dup := el.get(name); dup {
			return element{}, errors.New("parameter " + name + " given twice")
		}
		value, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return element{}, err
		}
		el.params = append(el.params, param{name: name, value: value, set: set})
	}
	return el, nil
}

// parseList reads every element of every line of a list header ("a, b" and two lines "a" and "b" are
// the same). Empty elements are skipped, as HTTP lists allow.
func parseList(lines []string) ([]element, error) {
	var out []element
	for _, line := range lines {
		parts, err := splitOutside(line, ',')
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if strings.TrimSpace(p) == "" {
				continue
			}
			el, err := parseElement(p)
			if err != nil {
				return nil, err
			}
			out = append(out, el)
		}
	}
	return out, nil
}
