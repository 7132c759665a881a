package wire

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedToken is returned by ParseToken for a string that is not an
// enrollment token.
var ErrMalformedToken = errors.New("malformed enrollment token: expected ID.SECRET.CAPIN[.ORGFP] as printed by `deskside token create`")

// Token is an enrollment token. Its string form "ID.SECRET.PIN" carries the
// CA pin so an agent can verify the relay before it has any certificate;
// "ID.SECRET.PIN.ORGFP" also carries the fingerprint of the organisation
// key the agent pins at enrollment (docs/adr 22). Both forms parse.
type Token struct {
	ID     string // 16 hex digits
	Secret string // base64url, 32 random bytes
	Pin    string // the relay CA's pin (see CAPin)
	// OrgFingerprint is the organisation key's fingerprint
	// (envelope.Fingerprint), "" when the token carries none.
	OrgFingerprint string
}

// NewToken makes a token with a fresh id and secret for the CA pin.
func NewToken(pin string) Token {
	id := make([]byte, 8)
	sec := make([]byte, 32)
	rand.Read(id)
	rand.Read(sec)
	return Token{ID: hex.EncodeToString(id), Secret: base64.RawURLEncoding.EncodeToString(sec), Pin: pin}
}

func (t Token) String() string {
	s := t.ID + "." + t.Secret + "." + t.Pin
	if t.OrgFingerprint != "" {
		s += "." + t.OrgFingerprint
	}
	return s
}

// ParseToken parses the string form of a token.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 && len(parts) != 4 {
		return Token{}, ErrMalformedToken
	}
	t := Token{ID: parts[0], Secret: parts[1], Pin: parts[2]}
	if len(parts) == 4 {
		// Same form as a CA pin: base64url of a SHA-256 (envelope.Fingerprint).
		fp, err := ParsePin(parts[3])
		if err != nil || fp != parts[3] {
			return Token{}, fmt.Errorf("%w (bad organisation key fingerprint)", ErrMalformedToken)
		}
		t.OrgFingerprint = fp
	}
	if _, err := hex.DecodeString(t.ID); err != nil || len(t.ID) != 16 {
		return Token{}, fmt.Errorf("%w (bad id)", ErrMalformedToken)
	}
	if b, err := base64.RawURLEncoding.DecodeString(t.Secret); err != nil || len(b) != 32 {
		return Token{}, fmt.Errorf("%w (bad secret)", ErrMalformedToken)
	}
	if _, err := ParsePin(t.Pin); err != nil {
		return Token{}, fmt.Errorf("%w (bad CA pin)", ErrMalformedToken)
	}
	return t, nil
}
