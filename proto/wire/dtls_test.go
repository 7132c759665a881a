package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestDTLSFingerprint(t *testing.T) {
	fp := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	if alg, d, err := ParseDTLSFingerprint(fp); err != nil || alg != "sha-256" || len(d) != 32 || d[0] != 0xab {
		t.Fatalf("%q: %s %x %v", fp, alg, d, err)
	}
	for _, bad := range []string{
		"", "sha-256", "AB:CD", "md5 " + strings.TrimSuffix(strings.Repeat("AB:", 16), ":"),
		"sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 31), ":"),
		"sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 31), ":") + ":G1",
		"sha-256 " + strings.TrimSuffix(strings.Repeat("ABC:", 32), ":"),
		"sha-256 " + strings.Repeat("A", 300),
	} {
		if _, _, err := ParseDTLSFingerprint(bad); !errors.Is(err, ErrBadDTLSFingerprint) {
			t.Errorf("%q: %v, want ErrBadDTLSFingerprint", bad, err)
		}
	}
	lower := "SHA-256 " + strings.ToLower(fp[len("sha-256 "):])
	if !SameDTLSFingerprint(fp, lower) {
		t.Error("case differences make fingerprints differ")
	}
	other := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 31), ":") + ":AC"
	if SameDTLSFingerprint(fp, other) || SameDTLSFingerprint(fp, "sha-384 "+fp[8:]) || SameDTLSFingerprint("", "") {
		t.Error("different fingerprints compare equal")
	}
}
