package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A viewer's DTLS fingerprint is written as SDP's a=fingerprint names it
// (RFC 8122): a hash function, a space, and the certificate's hash as
// colon-separated hex bytes ("sha-256 AB:CD:…"). The viewer sends its own
// in StartDesktopSessionRequest; a signed desktop envelope binds it, and
// the agent accepts only an answer carrying it (docs/adr 22).

// MaxDTLSFingerprintLen bounds a fingerprint string (sha-512: 7 + 1 + 191).
const MaxDTLSFingerprintLen = 200

// dtlsHashLen is the digest length of each accepted hash function.
var dtlsHashLen = map[string]int{"sha-256": 32, "sha-384": 48, "sha-512": 64}

// ErrBadDTLSFingerprint is wrapped by ParseDTLSFingerprint's errors.
var ErrBadDTLSFingerprint = errors.New(`not a DTLS fingerprint (want "sha-256 AB:CD:…", the viewer's certificate as its SDP names it)`)

// ParseDTLSFingerprint checks s and returns its hash function (lower
// case) and digest.
func ParseDTLSFingerprint(s string) (alg string, digest []byte, err error) {
	if len(s) > MaxDTLSFingerprintLen {
		return "", nil, fmt.Errorf("%w: longer than %d characters", ErrBadDTLSFingerprint, MaxDTLSFingerprintLen)
	}
	alg, value, ok := strings.Cut(strings.TrimSpace(s), " ")
	alg = strings.ToLower(alg)
	want, known := dtlsHashLen[alg]
	switch {
	case !ok:
		return "", nil, ErrBadDTLSFingerprint
	case !known:
		return "", nil, fmt.Errorf("%w: hash function %q (use sha-256, sha-384 or sha-512)", ErrBadDTLSFingerprint, alg)
	}
	parts := strings.Split(value, ":")
	if len(parts) != want {
		return "", nil, fmt.Errorf("%w: %s needs %d bytes, got %d", ErrBadDTLSFingerprint, alg, want, len(parts))
	}
	digest = make([]byte, want)
	for i, p := range parts {
		if len(p) != 2 {
			return "", nil, fmt.Errorf("%w: byte %d is %q", ErrBadDTLSFingerprint, i+1, p)
		}
		if _, err := hex.Decode(digest[i:i+1], []byte(p)); err != nil {
			return "", nil, fmt.Errorf("%w: byte %d is %q", ErrBadDTLSFingerprint, i+1, p)
		}
	}
	return alg, digest, nil
}

// SameDTLSFingerprint reports whether a and b are well formed and name
// the same hash function and digest (hex compared case-insensitively).
func SameDTLSFingerprint(a, b string) bool {
	aa, ad, err := ParseDTLSFingerprint(a)
	if err != nil {
		return false
	}
	ba, bd, err := ParseDTLSFingerprint(b)
	return err == nil && aa == ba && string(ad) == string(bd)
}
