package cli

// Signed agent releases (docs/adr 33), the release manager's side: the
// release key lives on the machine that builds releases, never on the
// relay, and is not the organisation key.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/internal/atomicfile"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
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

const releaseUploadHelp = `
Uploads a signed agent build to the relay (admin): FILE and the manifest
deskside release sign wrote beside it (FILE.release). The relay checks
that they belong together; agents check the signature against the
release key they pin. Then start a rollout:
  deskside release rollout --version vX.Y.Z --percent 10`

const releaseRolloutHelp = `
Offers an uploaded release to agents (admin): a percentage of the devices
first (the same ones as the percentage grows), a device group, or all.
Connected agents are offered it at once, the others when they connect.

Examples:
  deskside release rollout --version v1.4.0 --percent 10
  deskside release rollout --version v1.4.0 --group pilot
  deskside release rollout --version v1.4.0 --all`

func (e *runEnv) releaseUpload(args []string) error {
	fs := e.flags("release upload", releaseUploadHelp)
	manifest := fs.String("manifest", "", "signed manifest (default FILE"+ReleaseManifestExt+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage(fs, "release upload needs the executable")
	}
	mpath := *manifest
	if mpath == "" {
		mpath = pos[0] + ReleaseManifestExt
	}
	b, err := os.ReadFile(mpath)
	if err != nil {
		return fmt.Errorf("%w (sign the build first: deskside release sign --key FILE --version vX.Y.Z %s)", err, pos[0])
	}
	r, err := envelope.ReadRelease(mpath, b)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	st, err := desksidev1.NewUpdateServiceClient(c.cc).UploadRelease(ctx)
	if err != nil {
		return c.explain(err)
	}
	if err := st.Send(&desksidev1.UploadReleaseRequest{Release: r}); err != nil {
		return c.explain(err)
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if err := st.Send(&desksidev1.UploadReleaseRequest{Data: buf[:n]}); err != nil {
				break // the relay's answer says why
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		return c.explain(err)
	}
	_, err = fmt.Fprintf(e.stdout, "Uploaded %s for %s/%s (release key %s).\nOffer it with: deskside release rollout --version %s --os %s --arch %s --percent 10\n",
		clean(resp.GetVersion()), clean(resp.GetOs()), clean(resp.GetArch()), clean(resp.GetReleaseKeyFingerprint()), clean(resp.GetVersion()), clean(resp.GetOs()), clean(resp.GetArch()))
	return err
}

func (e *runEnv) releaseRollout(args []string) error {
	fs := e.flags("release rollout", releaseRolloutHelp)
	version := fs.String("version", "", "uploaded version (required)")
	goos := fs.String("os", "linux", "operating system of the release")
	goarch := fs.String("arch", "amd64", "architecture of the release")
	percent := fs.Uint("percent", 0, "percentage of the devices, 1-100")
	group := fs.String("group", "", "device group")
	all := fs.Bool("all", false, "every device")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *all {
		*percent = 100
	}
	if *version == "" || (*percent == 0) == (*group == "") {
		return errUsage(fs, "release rollout needs --version and one of --percent N, --group G or --all")
	}
	if _, err := unaryOn(e, desksidev1.NewUpdateServiceClient, func(ctx context.Context, c desksidev1.UpdateServiceClient) (*desksidev1.StartRolloutResponse, error) {
		return c.StartRollout(ctx, &desksidev1.StartRolloutRequest{
			Version: *version, Os: *goos, Arch: *goarch, Percent: uint32(min(*percent, 101)), Group: *group,
		})
	}); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "Rolling out %s. Follow it with: deskside release status\n", *version)
	return err
}

func (e *runEnv) releaseStatus(args []string) error {
	fs := e.flags("release status", "")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var resp *desksidev1.GetUpdatesResponse
	var devices []*desksidev1.DeviceUpdate
	for token := ""; ; {
		page, err := unaryOn(e, desksidev1.NewUpdateServiceClient, func(ctx context.Context, c desksidev1.UpdateServiceClient) (*desksidev1.GetUpdatesResponse, error) {
			return c.GetUpdates(ctx, &desksidev1.GetUpdatesRequest{PageToken: token})
		})
		if err != nil {
			return err
		}
		if resp == nil {
			resp = page
		}
		devices = append(devices, page.GetDevices()...)
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	w := e.output()
	defer w.Flush()
	r := resp.GetRollout()
	if r.GetVersion() == "" {
		fmt.Fprintln(w, "No rollout. Start one with: deskside release rollout --version vX.Y.Z --percent 10")
	} else {
		to := fmt.Sprintf("%d %% of the devices", r.GetPercent())
		if r.GetGroup() != "" {
			to = "group " + clean(r.GetGroup())
		}
		fmt.Fprintf(w, "Rollout %s for %s/%s to %s, since %s\n", clean(r.GetVersion()), clean(r.GetOs()), clean(r.GetArch()), to, resp.GetStarted().AsTime().Format(time.RFC3339))
	}
	counts := map[string]int{}
	for _, d := range devices {
		if d.GetStatus().GetVersion() == r.GetVersion() {
			counts[updateStateName(d.GetStatus().GetState())]++
		}
	}
	for _, s := range []string{"downloading", "installed", "refused", "failed", "rolled back"} {
		if counts[s] > 0 {
			fmt.Fprintf(w, "  %-12s %d\n", s, counts[s])
		}
	}
	for _, d := range devices {
		fmt.Fprintf(w, "%s  %s  %s  %s\n", clean(d.GetDeviceId()), clean(d.GetStatus().GetVersion()), updateStateName(d.GetStatus().GetState()), clean(d.GetStatus().GetReason()))
	}
	return nil
}

func updateStateName(s desksidev1.UpdateState) string {
	switch s {
	case desksidev1.UpdateState_UPDATE_STATE_REFUSED:
		return "refused"
	case desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING:
		return "downloading"
	case desksidev1.UpdateState_UPDATE_STATE_INSTALLED:
		return "installed"
	case desksidev1.UpdateState_UPDATE_STATE_FAILED:
		return "failed"
	case desksidev1.UpdateState_UPDATE_STATE_ROLLED_BACK:
		return "rolled back"
	}
	return "offered"
}
