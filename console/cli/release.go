package cli

// Signed agent releases (docs/adr 33), the release manager's side: the
// release key lives on the machine that builds releases, never on the
// relay, and is not the organisation key.

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// ReleaseManifestExt names a signed manifest beside its executable.
const ReleaseManifestExt = ".release"

// maxReleaseSize is the largest agent executable the CLI signs; agents
// refuse larger ones whatever the manifest says.
const maxReleaseSize = 256 << 20

const releaseKeygenHelp = `
Creates the release signing key (Ed25519) in FILE (default
release-key.pem), readable by you only. Keep it where releases are built,
never on the relay, and do not reuse the organisation key: agents refuse a
release key that is also their organisation key. Agents pin its
fingerprint at install: deskside-agent update pin FINGERPRINT (as root).`

const releaseSignHelp = `
Signs an agent executable with the release key: writes FILE.release, the
manifest (version, os/arch, SHA-256, size) and its signature. Agents that
pin this key install it only when the version is newer than theirs.

Example:
  deskside release sign --key release-key.pem --version v1.4.0 --os linux --arch amd64 dist/deskside-agent`

func (e *runEnv) releaseKeygen(args []string) error {
	path, fp, err := e.newKeyFile("release keygen", releaseKeygenHelp, "release-key.pem", args)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Release key written to %s (keep it where releases are built; the relay never holds it).\nFingerprint: %s\n"+
		"Pin it on each agent at install, as root: deskside-agent update pin %s\n"+
		"Sign a build with: deskside release sign --key %s --version vX.Y.Z --os linux --arch amd64 FILE\n", path, fp, fp, path)
	return err
}

func (e *runEnv) releaseSign(args []string) error {
	fs := e.flags("release sign", releaseSignHelp)
	keyPath := fs.String("key", "", "release key file from deskside release keygen (required)")
	version := fs.String("version", "", "version of the build, vX.Y.Z (required)")
	goos := fs.String("os", runtime.GOOS, "operating system the build is for")
	goarch := fs.String("arch", runtime.GOARCH, "architecture the build is for")
	out := fs.String("o", "", "manifest file to write (default FILE"+ReleaseManifestExt+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *keyPath == "" || *version == "" {
		return errUsage(fs, "release sign needs --key FILE --version vX.Y.Z and the executable")
	}
	key, err := readKey(*keyPath)
	if err != nil {
		return err
	}
	st, err := os.Stat(pos[0])
	if err != nil {
		return err
	}
	if st.Size() > maxReleaseSize {
		return fmt.Errorf("%s is %d bytes, more than agents accept (%d)", pos[0], st.Size(), maxReleaseSize)
	}
	exe, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	r, err := envelope.SignRelease(key, envelope.ReleaseManifestFor(exe, *version, *goos, *goarch), time.Now())
	if errors.Is(err, envelope.ErrReleaseManifest) {
		return errUsage(fs, "%v", err)
	}
	if err != nil {
		return err
	}
	b, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = pos[0] + ReleaseManifestExt
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Signed %s %s/%s (%d bytes) with release key %s.\nManifest: %s\n", *version, *goos, *goarch, len(exe), envelope.Fingerprint(key.Public().(ed25519.PublicKey)), path)
	return err
}
