package wire

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// A CA pin is base64url (no padding) of the SHA-256 of a certificate's DER
// bytes: 43 characters. Enrollment tokens carry the relay CA's pin (the last
// dot-separated part), and `deskside login --ca-pin` takes one, so an agent
// or the CLI can trust a relay before it holds any certificate of it.

// PinLen is the length of a CA pin in characters.
const PinLen = 43

var (
	// ErrPinMismatch is returned by VerifyPinned when no certificate of the
	// presented chain has the pin. Callers replace it with an error that
	// names where their pin came from (a token, --ca-pin).
	ErrPinMismatch = errors.New("no certificate in the relay's chain matches the CA pin")
	// ErrBadPin is returned by ParsePin for a string that is not a pin.
	ErrBadPin = errors.New("not a CA pin (base64url SHA-256, 43 characters)")
)

// CAPin returns the pin of a certificate given its DER bytes.
func CAPin(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ParsePin trims s and checks that it has the form of a pin.
func ParsePin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.RawURLEncoding.DecodeString(s); err != nil || len(b) != sha256.Size {
		return "", ErrBadPin
	}
	return s, nil
}

// VerifyPinned checks a server's chain (leaf first, as in
// tls.ConnectionState.PeerCertificates) against a pin: some certificate of
// the chain must have the pin, and the leaf must verify for host with that
// certificate as the only root. It returns the pinned certificate, or
// ErrPinMismatch when none has the pin.
func VerifyPinned(chain []*x509.Certificate, pin, host string) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, ErrPinMismatch
	}
	var ca *x509.Certificate
	inter := x509.NewCertPool()
	for i, c := range chain {
		if CAPin(c.Raw) == pin {
			ca = c
		}
		if i > 0 {
			inter.AddCert(c)
		}
	}
	if ca == nil {
		return nil, ErrPinMismatch
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("the relay's certificate does not verify for %q under the pinned CA: %w", host, err)
	}
	return ca, nil
}
