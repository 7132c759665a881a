package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestOrgPinReplace: root pins a key; a different one needs --replace.
func TestOrgPinReplace(t *testing.T) {
	dir := t.TempDir()
	fp := func() string {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		return envelope.Fingerprint(pub)
	}
	a, b := fp(), fp()
	var out, errs bytes.Buffer
	if err := cmdOrg([]string{"pin", a, "--state", dir}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if err := cmdOrg([]string{"pin", a, "--state", dir}, &out, &errs); err != nil {
		t.Fatalf("pinning the same key again: %v", err)
	}
	err := cmdOrg([]string{"pin", b, "--state", dir}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "deskside-agent org pin --replace "+b) {
		t.Fatalf("another key without --replace: %v", err)
	}
	if got, how, _ := orgtrust.ReadPin(dir); got != a || how != orgtrust.SourceLocal {
		t.Fatalf("pin %q from %q after a refused change", got, how)
	}
	if err := cmdOrg([]string{"pin", "--replace", b, "--state", dir}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := orgtrust.ReadPin(dir); got != b {
		t.Fatalf("pin %q after --replace, want %q", got, b)
	}
}

// TestOrgPinLeadingDash: a fingerprint is base64url and may start with
// "-"; it is taken as the fingerprint wherever it stands, not as a flag.
func TestOrgPinLeadingDash(t *testing.T) {
	fp := "-" + strings.Repeat("A", 42)
	for _, args := range [][]string{
		{"pin", fp, "--state", ""},
		{"pin", "--state", "", fp},
		{"pin", "--replace", fp, "--state", ""},
	} {
		dir := t.TempDir()
		for i := range args {
			if args[i] == "" {
				args[i] = dir
			}
		}
		var out, errs bytes.Buffer
		if err := cmdOrg(args, &out, &errs); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if got, _, _ := orgtrust.ReadPin(dir); got != fp {
			t.Fatalf("%q: pinned %q", args, got)
		}
	}
}
