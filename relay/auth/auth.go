// Package auth holds technician credentials: argon2id password hashes,
// TOTP second factors (each code's time step, so a code is accepted
// once), opaque session tokens (only their hashes are stored), the
// lockout policy for repeated wrong passwords, and the throttles that
// charge an attempt before it is checked: per-address budgets and a
// per-account gate.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
)

// argon2id parameters (OWASP's 2023 minimum: 19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// Lockout policy: after MaxFailures wrong passwords in a row the account
// is locked for LockoutPeriod. Each check is counted before the password
// hash is computed, so at most MaxFailures checks run per lockout period.
const (
	MaxFailures   = 5
	LockoutPeriod = 15 * time.Minute
	// SessionTTL is how long a console session lasts.
	SessionTTL = 12 * time.Hour
)

var (
	// ErrBadHash is returned for a stored hash that is not argon2id PHC.
	ErrBadHash = errors.New("auth: stored password hash is not argon2id")
	// ErrWeakPassword is returned for a password under 12 characters.
	ErrWeakPassword = errors.New("auth: password must be at least 12 characters")
)

// HashPassword returns the argon2id hash of pw in PHC string form.
func HashPassword(pw string) (string, error) {
	if len([]rune(pw)) < 12 {
		return "", ErrWeakPassword
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the PHC hash.
func VerifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var version int
	var mem, t uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &threads); err != nil || mem == 0 || t == 0 || threads == 0 {
		return false, ErrBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, ErrBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NewSessionToken returns a random bearer token and the hash to store.
func NewSessionToken() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = "dss_" + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is how tokens and secrets are stored: SHA-256. They are 256-bit
// random values, so a slow hash adds nothing.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// RandomPassword returns a random 20-character password.
func RandomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidTOTP checks a 6-digit TOTP code (RFC 6238, 30 s steps, one step of
// skew either way).
func ValidTOTP(secret, code string, now time.Time) bool {
	ok, err := totp.ValidateCustom(code, secret, now, totp.ValidateOpts{Period: 30, Skew: 1, Digits: 6})
	return err == nil && ok
}

func subtleEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
