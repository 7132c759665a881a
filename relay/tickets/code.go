package tickets

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
)

// Alphabet is what ticket codes are made of: digits and capital letters
// without 0, O, 1 and I, which are misread over the phone. 32 characters,
// so each is 5 random bits.
const Alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// CodePrefix starts every code.
const CodePrefix = "DS-"

// codeLen is the length of a code after the prefix; codes get one more
// character once a code of codeLen keeps colliding (after about a million
// tickets).
const codeLen = 4

// newCode draws a code of n characters from r (crypto/rand by default).
func newCode(r io.Reader, n int) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("tickets: random code: %w", err)
	}
	for i := range b {
		b[i] = Alphabet[b[i]&31]
	}
	return CodePrefix + string(b), nil
}

// NormalizeCode turns what someone typed or read out into the stored form
// of a code: any case, with or without "DS", dashes or spaces ("ds 7k3q",
// "7K3Q", "DS-7k3q" are all "DS-7K3Q"). It reports false when s cannot be
// a code (wrong length, or a character codes never have).
func NormalizeCode(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	prefixed := false
	for _, p := range []string{"DS-", "DS ", "DS_"} {
		if rest, ok := strings.CutPrefix(u, p); ok {
			u, prefixed = rest, true
			break
		}
	}
	var b strings.Builder
	for _, r := range u {
		switch {
		case r == '-' || r == ' ' || r == '_':
		case r < 128:
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	c := b.String()
	if !prefixed && len(c) >= codeLen+2 && strings.HasPrefix(c, "DS") {
		c = c[2:]
	}
	if len(c) < codeLen || len(c) > codeLen+1 {
		return "", false
	}
	for i := 0; i < len(c); i++ {
		if strings.IndexByte(Alphabet, c[i]) < 0 {
			return "", false
		}
	}
	return CodePrefix + c, true
}
