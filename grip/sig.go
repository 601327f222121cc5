package grip

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the "iss" of the edge's Grip-Sig. A control JWT with this issuer is refused on publish:
// every GRIP function sees a Grip-Sig, and none may publish with it.
const Issuer = "sseedge"

// DefaultSigTTL is how long a Grip-Sig is valid: one call, with room for clock skew.
const DefaultSigTTL = time.Minute

// ParseKey reads a GRIP key as @fanoutio/grip reads one: "base64:..." is the base64 of the key's bytes,
// anything else is the key's UTF-8 bytes. An empty key is refused (GRIP is off without one).
func ParseKey(s string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(s, "base64:"); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("grip key: %w", err)
		}
		s = string(b)
	}
	if s == "" {
		return nil, errors.New("grip key: empty")
	}
	return []byte(s), nil
}

// Signer makes the Grip-Sig header of calls to GRIP functions: an HS256 JWT with iss "sseedge" and a
// short exp, which @fanoutio/serve-grip (given the key as verify_key) and Pushpin-style backends check.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner returns a Signer with key (see ParseKey) whose signatures last ttl (DefaultSigTTL when 0).
func NewSigner(key []byte, ttl time.Duration) (*Signer, error) {
	if len(key) == 0 {
		return nil, errors.New("grip signer: empty key")
	}
	if ttl <= 0 {
		ttl = DefaultSigTTL
	}
	return &Signer{key: key, ttl: ttl, now: time.Now}, nil
}

// Sign returns a fresh Grip-Sig value.
func (s *Signer) Sign() (string, error) {
	now := s.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer:    Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
	})
	sig, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("grip signer: %w", err)
	}
	return sig, nil
}

// ControlClaims are what a verified GRIP control JWT says.
type ControlClaims struct {
	Issuer    string
	ExpiresAt time.Time
}

// ControlVerifier checks the JWT that @fanoutio/grip's Publisher sends as "Authorization: Bearer" when
// configured with control_iss and key: HS256 over {"iss": control_iss, "exp": now+10m}. It requires
// exp and an iss, allows 30 s of clock skew, and refuses the edge's own issuer (see Issuer).
type ControlVerifier struct {
	key    []byte
	issuer string // when set, the only iss accepted
	now    func() time.Time
}

// NewControlVerifier returns a verifier for key; issuer, when not empty, is the only iss it accepts.
func NewControlVerifier(key []byte, issuer string) (*ControlVerifier, error) {
	if len(key) == 0 {
		return nil, errors.New("grip control verifier: empty key")
	}
	if issuer == Issuer {
		return nil, fmt.Errorf("grip control verifier: %q is the edge's own Grip-Sig issuer", Issuer)
	}
	return &ControlVerifier{key: key, issuer: issuer, now: time.Now}, nil
}

// Verify checks token and returns its claims.
func (v *ControlVerifier) Verify(token string) (ControlClaims, error) {
	const s = caller
	var claims jwt.RegisteredClaims
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30 * time.Second),
		jwt.WithTimeFunc(v.now),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if _, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil }, opts...); err != nil {
		return ControlClaims{}, s.wrap(CodeUnauthorized, "Authorization", err, "GRIP control JWT refused")
	}
	switch claims.Issuer {
	case "":
		return ControlClaims{}, s.errorf(CodeUnauthorized, "Authorization", "GRIP control JWT without iss")
	case Issuer:
		return ControlClaims{}, s.errorf(CodeUnauthorized, "Authorization", "a Grip-Sig (iss %q) cannot publish", Issuer)
	}
	return ControlClaims{Issuer: claims.Issuer, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// Authorizer decides whether a GRIP publish may go ahead: its Authorization is "Bearer <AdminToken>"
// (what the Publisher sends when given only key), or "Bearer <control JWT>" that Verifier accepts
// (control_iss and key). A nil Verifier accepts the admin token only.
type Authorizer struct {
	AdminToken string
	Verifier   *ControlVerifier
}

// Authorize checks an Authorization header value; the error is an *Error with status 401.
func (a Authorizer) Authorize(authorization string) error {
	const s = caller
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return s.errorf(CodeUnauthorized, "Authorization", "a GRIP publish needs Authorization: Bearer <admin token or control JWT>")
	}
	if a.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.AdminToken)) == 1 {
		return nil
	}
	if a.Verifier == nil {
		return s.errorf(CodeUnauthorized, "Authorization", "not the admin token (no GRIP key is set for control JWTs)")
	}
	_, err := a.Verifier.Verify(tok)
	return err
}
