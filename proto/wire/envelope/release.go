package envelope

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ctxRelease is the signing context of agent release manifests
// (docs/adr 33): a signature made for an envelope, a certificate or a key
// statement never verifies as a release, and the other way round.
const ctxRelease = "deskside agent release v1"

// Errors of release verification.
var (
	ErrReleaseSignature = errors.New("release: signature does not verify")
	ErrReleaseKey       = errors.New("release: not signed by the pinned release key")
	ErrReleaseManifest  = errors.New("release: malformed manifest")
)

// SignRelease signs a manifest for an executable with the release key;
// the key and the issue time are filled in.
func SignRelease(key ed25519.PrivateKey, m *desksidev1.ReleaseManifest, now time.Time) (*desksidev1.SignedRelease, error) {
	m = proto.Clone(m).(*desksidev1.ReleaseManifest)
	m.ReleasePublicKey = key.Public().(ed25519.PublicKey)
	m.IssuedAt = timestamppb.New(now)
	if err := checkManifest(m); err != nil {
		return nil, err
	}
	body, sig, err := sign(key, ctxRelease, m)
	if err != nil {
		return nil, err
	}
	return &desksidev1.SignedRelease{Manifest: body, Signature: sig}, nil
}

// ReleaseManifestFor describes the executable bytes exe.
func ReleaseManifestFor(exe []byte, version, goos, goarch string) *desksidev1.ReleaseManifest {
	sum := sha256.Sum256(exe)
	return &desksidev1.ReleaseManifest{Version: version, Os: goos, Arch: goarch, Sha256: sum[:], Size: uint64(len(exe))}
}

// VerifyRelease checks r's signature over the bytes received, that the
// key which made it has the fingerprint pin, and the manifest's form,
// then returns the manifest. An empty pin refuses everything.
func VerifyRelease(pin string, r *desksidev1.SignedRelease) (*desksidev1.ReleaseManifest, error) {
	if pin == "" {
		return nil, ErrReleaseKey
	}
	m := &desksidev1.ReleaseManifest{}
	if err := proto.Unmarshal(r.GetManifest(), m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReleaseManifest, err)
	}
	if Fingerprint(m.GetReleasePublicKey()) != pin {
		return nil, fmt.Errorf("%w (signed by %s, pinned %s)", ErrReleaseKey, Fingerprint(m.GetReleasePublicKey()), pin)
	}
	if !verify(m.GetReleasePublicKey(), ctxRelease, r.GetManifest(), r.GetSignature()) {
		return nil, ErrReleaseSignature
	}
	if err := checkManifest(m); err != nil {
		return nil, err
	}
	return m, nil
}

func checkManifest(m *desksidev1.ReleaseManifest) error {
	switch {
	case !semver.IsValid(m.GetVersion()) || semver.Canonical(m.GetVersion()) != strings.TrimSuffix(m.GetVersion(), semver.Build(m.GetVersion())):
		return fmt.Errorf("%w: version %q is not a semantic version such as v1.4.0", ErrReleaseManifest, m.GetVersion())
	case m.GetOs() == "" || m.GetArch() == "" || len(m.GetOs()) > 16 || len(m.GetArch()) > 16:
		return fmt.Errorf("%w: os and arch are required (--os linux --arch amd64)", ErrReleaseManifest)
	case len(m.GetSha256()) != sha256.Size || m.GetSize() == 0:
		return fmt.Errorf("%w: no executable hash or size", ErrReleaseManifest)
	}
	return nil
}

// Newer reports whether release version v is newer than current. A
// current version that is not semantic (a development build, "dev") is
// older than every release.
func Newer(v, current string) bool {
	return semver.IsValid(v) && semver.Compare(v, current) > 0
}

// MaxReleaseManifest is the largest signed manifest file read.
const MaxReleaseManifest = 64 << 10

// ReadRelease decodes a signed manifest file as deskside release sign
// writes it (path names it in the error).
func ReadRelease(path string, b []byte) (*desksidev1.SignedRelease, error) {
	r := &desksidev1.SignedRelease{}
	if len(b) > MaxReleaseManifest || proto.Unmarshal(b, r) != nil || len(r.GetManifest()) == 0 {
		return nil, fmt.Errorf("%s: not a release manifest (deskside release sign writes one)", path)
	}
	return r, nil
}
