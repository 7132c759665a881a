package envelope

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestRelease(t *testing.T) {
	_, rel, _ := ed25519.GenerateKey(rand.Reader)
	_, org, _ := ed25519.GenerateKey(rand.Reader)
	pin := Fingerprint(rel.Public().(ed25519.PublicKey))
	m := ReleaseManifestFor([]byte("agent"), "v1.2.0", "linux", "amd64")
	r, err := SignRelease(rel, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyRelease(pin, r)
	if err != nil || got.GetVersion() != "v1.2.0" || got.GetSize() != 5 {
		t.Fatalf("VerifyRelease = %v, %v", got, err)
	}

	// The organisation key signs the same manifest: not the pinned key.
	byOrg, _ := SignRelease(org, m, time.Now())
	if _, err := VerifyRelease(pin, byOrg); !errors.Is(err, ErrReleaseKey) {
		t.Errorf("org-signed release: %v", err)
	}
	// The release key's signature under another context (an envelope)
	// over the same bytes is not a release signature.
	other := &desksidev1.SignedRelease{Manifest: r.Manifest, Signature: ed25519.Sign(rel, signingInput(ctxEnvelope, r.Manifest))}
	if _, err := VerifyRelease(pin, other); !errors.Is(err, ErrReleaseSignature) {
		t.Errorf("envelope-context signature: %v", err)
	}
	// A flipped bit in the manifest.
	bad := &desksidev1.SignedRelease{Manifest: append([]byte(nil), r.Manifest...), Signature: r.Signature}
	bad.Manifest[len(bad.Manifest)-1] ^= 1
	if _, err := VerifyRelease(pin, bad); err == nil {
		t.Error("tampered manifest verified")
	}
	if _, err := VerifyRelease("", r); !errors.Is(err, ErrReleaseKey) {
		t.Errorf("no pin: %v", err)
	}
	for _, v := range []string{"1.2.0", "v1.2", "latest", ""} {
		if _, err := SignRelease(rel, ReleaseManifestFor([]byte("x"), v, "linux", "amd64"), time.Now()); !errors.Is(err, ErrReleaseManifest) {
			t.Errorf("version %q: %v", v, err)
		}
	}
}

func TestNewer(t *testing.T) {
	for _, c := range []struct {
		v, cur string
		want   bool
	}{
		{"v1.2.0", "v1.1.9", true},
		{"v1.10.0", "v1.9.0", true},
		{"v1.2.0", "v1.2.0", false},
		{"v1.1.0", "v1.2.0", false},
		{"v1.2.0", "dev", true},
		{"v1.2.0-rc.1", "v1.2.0", false},
		{"junk", "v1.0.0", false},
	} {
		if got := Newer(c.v, c.cur); got != c.want {
			t.Errorf("Newer(%q, %q) = %v", c.v, c.cur, got)
		}
	}
}

// FuzzVerifyRelease feeds VerifyRelease the manifest and signature bytes
// a relay could send: it must never panic, and must accept only what
// the pinned key signed.
func FuzzVerifyRelease(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pin := Fingerprint(seed.Public().(ed25519.PublicKey))
	r, err := SignRelease(seed, ReleaseManifestFor([]byte("agent"), "v1.0.0", "linux", "amd64"), time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.GetManifest(), r.GetSignature())
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x0a, 0xff}, r.GetSignature())
	f.Fuzz(func(t *testing.T, manifest, sig []byte) {
		m, err := VerifyRelease(pin, &desksidev1.SignedRelease{Manifest: manifest, Signature: sig})
		if err != nil {
			return
		}
		if !ed25519.Verify(seed.Public().(ed25519.PublicKey), signingInput(ctxRelease, manifest), sig) || m.GetVersion() == "" {
			t.Fatalf("accepted a manifest the key did not sign: %v", m)
		}
	})
}
