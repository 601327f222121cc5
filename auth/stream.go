package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew tolerated on exp (and nbf) unless WithLeeway says otherwise.
const DefaultLeeway = 5 * time.Second

// MaxTokenLen bounds the size of a stream token. Longer tokens are refused before any decoding, so a
// hostile client cannot make the edge base64- and JSON-decode megabytes per connection attempt.
const MaxTokenLen = 8 << 10

// Claims are the claims of a stream token: sub (RegisteredClaims.Subject) is the client ID, Topics the
// topic prefixes the holder may read, and exp (RegisteredClaims.ExpiresAt) is required.
type Claims struct {
	Topics []string `json:"topics,omitempty"`
	jwt.RegisteredClaims
}

// AllowsTopic reports whether the claims let their holder read topic. Topics are hierarchical, so
// matching is by whole path segments: the prefix "/pets" allows "/pets" and "/pets/dogs" but not
// "/petsitters". A prefix of "/" or "*" allows every topic; an empty prefix allows nothing. Leading,
// trailing and repeated slashes are ignored on both sides, so "pets/" equals "/pets". Topics with a "."
// or ".." segment are always refused, so a path cleaned later cannot escape the granted prefix. topic
// must be in the same (decoded) form the fan-out uses. A nil *Claims allows nothing.
func (c *Claims) AllowsTopic(topic string) bool {
	if c == nil {
		return false
	}
	for _, seg := range segments(topic) {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, p := range c.Topics {
		if topicHasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// topicHasPrefix reports whether topic equals prefix or lies below it, segment by segment.
func topicHasPrefix(topic, prefix string) bool {
	p := strings.TrimSpace(prefix)
	if p == "" {
		return false
	}
	if p == "*" || strings.Trim(p, "/") == "" {
		return true
	}
	ts, ps := segments(topic), segments(p)
	if len(ps) > len(ts) {
		return false
	}
	for i := range ps {
		if ps[i] != ts[i] {
			return false
		}
	}
	return true
}

// segments splits a topic path into its non-empty segments.
func segments(path string) []string {
	return strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
}

// StreamOption configures a StreamAuth.
type StreamOption func(*streamConfig)

type streamConfig struct {
	leeway time.Duration
	now    func() time.Time
}

// WithLeeway sets the tolerated clock skew on exp and nbf (default DefaultLeeway; negative means none).
func WithLeeway(d time.Duration) StreamOption {
	return func(c *streamConfig) { c.leeway = max(d, 0) }
}

// WithClock replaces time.Now when checking exp and nbf, for tests.
func WithClock(now func() time.Time) StreamOption {
	return func(c *streamConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// StreamAuth verifies the signed tokens of stream requests. It accepts only HS256 with its secret (so
// "alg: none", HS512 and RS256 tokens are refused, closing algorithm confusion), requires exp and enforces
// it with a small leeway. A nil or zero StreamAuth has no secret: stream auth is off and every request is
// allowed. It is safe for concurrent use.
type StreamAuth struct {
	secret []byte
	parser *jwt.Parser
	leeway time.Duration
}

// NewStreamAuth returns a StreamAuth for secret (TOKEN_SECRET). An empty secret turns stream auth off.
func NewStreamAuth(secret []byte, opts ...StreamOption) *StreamAuth {
	if len(secret) == 0 {
		return &StreamAuth{}
	}
	cfg := streamConfig{leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	return &StreamAuth{
		secret: bytes.Clone(secret),
		leeway: cfg.leeway,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(cfg.leeway),
			jwt.WithTimeFunc(cfg.now),
		),
	}
}

// Enabled reports whether stream auth is on (a secret is configured).
func (s *StreamAuth) Enabled() bool { return s != nil && len(s.secret) > 0 }

// AuthorizeClient checks token for the personal stream of clientID: valid, unexpired, and with sub equal
// to clientID. With auth off it returns (nil, nil). Errors are *Error (see Code).
func (s *StreamAuth) AuthorizeClient(token, clientID string) (*Claims, error) {
	if !s.Enabled() {
		return nil, nil
	}
	c, err := s.verify(token)
	if err != nil {
		return nil, err
	}
	if c.Subject == "" || c.Subject != clientID {
		return nil, ErrWrongSubject.with(fmt.Errorf("token sub %q, stream client %q", c.Subject, clientID))
	}
	return c, nil
}

// AuthorizeTopic checks token for a stream of topic: valid, unexpired, and with a topics prefix covering
// topic (see Claims.AllowsTopic). With auth off it returns (nil, nil). Errors are *Error (see Code).
func (s *StreamAuth) AuthorizeTopic(token, topic string) (*Claims, error) {
	if !s.Enabled() {
		return nil, nil
	}
	c, err := s.verify(token)
	if err != nil {
		return nil, err
	}
	if !c.AllowsTopic(topic) {
		return nil, ErrTopicDenied.with(fmt.Errorf("topic %q", topic))
	}
	return c, nil
}

// Deadline is the last instant claims c (as returned by AuthorizeClient or AuthorizeTopic) are accepted:
// exp plus the leeway. A held stream ends then, as a new connection with the same token is refused
// from then on. It is the zero time for nil claims (auth off: no deadline).
func (s *StreamAuth) Deadline(c *Claims) time.Time {
	if s == nil || c == nil || c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Add(s.leeway)
}

// verify parses token and checks its signature, algorithm and time claims.
func (s *StreamAuth) verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	if len(token) > MaxTokenLen {
		return nil, ErrTokenInvalid.with(fmt.Errorf("token longer than %d bytes", MaxTokenLen))
	}
	c := new(Claims)
	if _, err := s.parser.ParseWithClaims(token, c, s.key); err != nil {
		// jwt/v5 checks the signature before the claims, so "expired" implies a genuine token.
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, ErrTokenExpired.with(err)
		}
		return nil, ErrTokenInvalid.with(err)
	}
	return c, nil
}

// key is the jwt.Keyfunc: it hands out the secret only for HS256, a second line behind WithValidMethods.
func (s *StreamAuth) key(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	return s.secret, nil
}

// TokenFrom picks the stream token of a request: the X-Authorization header, as "Bearer <token>" or the
// raw token, and otherwise the (already decoded) ?token= query value. It returns "" when neither is set.
func TokenFrom(headerXAuthorization []byte, queryToken []byte) string {
	if h := bytes.TrimSpace(headerXAuthorization); len(h) > 0 {
		if t, ok := bearer(h); ok {
			return string(t)
		}
		return string(h)
	}
	return string(bytes.TrimSpace(queryToken))
}

// Sign returns an HS256 stream token for sub (the client ID) and topics, expiring after ttl. It is meant
// for tests, documentation and a token CLI; production tokens are usually minted by the application
// backend with any JWT library.
func Sign(secret []byte, sub string, topics []string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("auth: sign: empty secret")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: sign: ttl %v must be positive", ttl)
	}
	now := time.Now()
	return signClaims(secret, &Claims{
		Topics: topics,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	})
}

func signClaims(secret []byte, c *Claims) (string, error) {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}
