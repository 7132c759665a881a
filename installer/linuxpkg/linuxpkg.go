// Package linuxpkg builds Deskside's Linux packages with nfpm as a library:
// deskside-agent and deskside-relay as .deb and .rpm, each with its systemd
// unit, configuration files marked as such (the relay's relay.yaml is
// relay/config's example, so it lists every key) and install scripts (the agent
// enrolls at install when given a relay and a token; the relay gets a
// `deskside` system user), plus an SPDX SBOM per package and SHA256SUMS.
// The same checkout gives the same bytes: the version comes from git, and
// every timestamp is the last commit's (SOURCE_DATE_EPOCH). ADR 0031.
package linuxpkg

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager

	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/config"
)

//go:embed files
var embedded embed.FS

// The packages, and where their files go.
const (
	Agent = "deskside-agent"
	Relay = "deskside-relay"

	AgentUnit     = "/usr/lib/systemd/system/deskside-agent.service"
	RelayUnit     = "/usr/lib/systemd/system/deskside-relay.service"
	AgentEnv      = "/etc/deskside/agent.env"
	RelayConfig   = config.DefaultFile
	AutostartPath = tray.AutostartPath
	AgentState    = "/var/lib/deskside-agent"
	RelayData     = "/var/lib/deskside-relay"
	// RelayUser is the relay's system user and group.
	RelayUser = "deskside"
)

// Formats are the package formats built.
var Formats = []string{"deb", "rpm"}

// ErrNotLinux is returned by Build for a target other than Linux.
var ErrNotLinux = errors.New("the Linux packages are built for linux only")

// Options says what Build builds from and to.
type Options struct {
	Root    string    // the module root, a git checkout
	Out     string    // where the packages, SBOMs and SHA256SUMS go
	Version string    // package version; PackageVersion of git describe when empty
	Epoch   time.Time // every timestamp in the output; the last commit's time when zero
	GoCmd   string    // the go command, "go" when empty
	Logger  *slog.Logger
	// Formats restricts the formats built (Formats when empty); the
	// binaries and SBOMs are the same whichever are built.
	Formats []string
	// ReleaseKey, a release key fingerprint (`deskside release keygen`),
	// is written into the agent package's agent.env as
	// DESKSIDE_RELEASE_KEY, so every install pins it (ADR 33) unless the
	// installer's environment or a dropped agent.env names another.
	ReleaseKey string
}

// Result lists what Build wrote.
type Result struct {
	Version string
	Epoch   time.Time
	// Files are the paths written, SHA256SUMS last.
	Files []string
	// Packages maps "deskside-agent.deb" (name and format) to its path.
	Packages map[string]string
}

// binary is one Go program that a package ships in /usr/bin.
type binary struct {
	name, pkg string
	cgo       bool
}

var binaries = map[string][]binary{
	// The agent links libvpx for its VP8 encoder (cgo); the rest are static.
	Agent: {{"deskside-agent", "./agent/cmd/deskside-agent", true}, {"deskside-tray", "./agent/cmd/deskside-tray", false}},
	Relay: {{"deskside-relay", "./relay/cmd/deskside-relay", false}, {"deskside", "./console/cmd/deskside", false}},
}

// Build builds the binaries and the packages into o.Out.
func Build(ctx context.Context, o Options) (*Result, error) {
	log := cmp.Or(o.Logger, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if runtime.GOOS != "linux" {
		return nil, ErrNotLinux
	}
	if o.Root == "" || o.Out == "" {
		return nil, errors.New("linuxpkg.Build needs Options.Root (the checkout) and Options.Out")
	}
	version, epoch, err := GitVersion(ctx, o.Root)
	if err != nil {
		return nil, err
	}
	version = cmp.Or(o.Version, version)
	if !o.Epoch.IsZero() {
		epoch = o.Epoch.UTC()
	}
	res := &Result{Version: version, Epoch: epoch, Packages: map[string]string{}}
	work := filepath.Join(o.Out, ".work")
	if err := os.RemoveAll(work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, embedded); err != nil {
		return nil, fmt.Errorf("stage the package files: %w", err)
	}
	stage := func(name string) string { return filepath.Join(work, "files", name) }
	if err := os.WriteFile(stage("deskside-tray.desktop"), tray.AutostartEntry("/usr/bin/deskside-tray"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(stage("relay.yaml"), RelayYAML(), 0o640); err != nil {
		return nil, err
	}
	env, err := AgentEnvFile(o.ReleaseKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(stage("agent.env"), env, 0o600); err != nil {
		return nil, err
	}
	formats := Formats
	if len(o.Formats) > 0 {
		for _, f := range o.Formats {
			if !slices.Contains(Formats, f) {
				return nil, fmt.Errorf("linuxpkg: unknown format %q (known: %s)", f, strings.Join(Formats, ", "))
			}
		}
		formats = o.Formats
	}

	bins := map[string][]string{}
	for _, pkg := range []string{Agent, Relay} {
		for _, b := range binaries[pkg] {
			out := filepath.Join(work, "bin", b.name)
			log.Info("building", "binary", b.name, "version", version)
			if err := goBuild(ctx, cmp.Or(o.GoCmd, "go"), o.Root, b, version, out); err != nil {
				return nil, err
			}
			bins[pkg] = append(bins[pkg], out)
		}
	}

	for _, pkg := range []string{Agent, Relay} {
		libs, err := neededLibraries(bins[pkg])
		if err != nil {
			return nil, err
		}
		for _, format := range formats {
			info, err := packageInfo(pkg, format, version, epoch, stage, bins[pkg], libs)
			if err != nil {
				return nil, err
			}
			path, err := writePackage(info, format, o.Out)
			if err != nil {
				return nil, err
			}
			log.Info("built", "package", filepath.Base(path))
			res.Files = append(res.Files, path)
			res.Packages[pkg+"."+format] = path
		}
		// The SBOM names the .deb, built or not (Options.Formats).
		debInfo, err := packageInfo(pkg, "deb", version, epoch, stage, bins[pkg], libs)
		if err != nil {
			return nil, err
		}
		debName, err := fileName(debInfo, "deb")
		if err != nil {
			return nil, err
		}
		sbom, err := SBOM(pkg, version, debName, bins[pkg], epoch)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(o.Out, pkg+"_"+version+".spdx.json")
		if err := os.WriteFile(path, sbom, 0o644); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, path)
	}
	sums, err := writeSums(o.Out, res.Files)
	if err != nil {
		return nil, err
	}
	res.Files = append(res.Files, sums)
	return res, nil
}

// RelayYAML is the relay's packaged /etc/deskside/relay.yaml:
// `deskside-relay config example` with the data directory set to the
// package's.
func RelayYAML() []byte {
	var b strings.Builder
	if err := config.ExampleWith(&b, map[string]any{"data": RelayData}); err != nil {
		panic(err) // a key of this package's own; TestRelayYAML runs it
	}
	return []byte(b.String())
}

// goBuild builds one binary the way the packages ship it: stripped,
// -trimpath, no build ID, the version stamped in.
func goBuild(ctx context.Context, goCmd, root string, b binary, version, out string) error {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath",
		"-ldflags", "-s -w -buildid= -X main.version="+version, "-o", out, b.pkg)
	cmd.Dir = root
	cgo := "0"
	if b.cgo {
		cgo = "1"
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOOS=linux")
	if outp, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if b.cgo {
			hint = " (the agent needs gcc and libvpx-dev: make deps-run)"
		}
		return fmt.Errorf("go build %s: %v%s\n%s", b.pkg, err, hint, outp)
	}
	return nil
}

// packageInfo is nfpm's description of one package in one format.
func packageInfo(pkg, format, version string, epoch time.Time, stage func(string) string, bins, libs []string) (*nfpm.Info, error) {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: epoch}}
	}
	conf := func(src, dst string, mode os.FileMode) *files.Content {
		c := file(src, dst, mode)
		c.Type = files.TypeConfigNoReplace
		return c
	}
	var contents files.Contents
	for _, b := range bins {
		contents = append(contents, file(b, "/usr/bin/"+filepath.Base(b), 0o755))
	}
	info := &nfpm.Info{
		Name: pkg, Arch: runtime.GOARCH, Platform: "linux",
		Version: version, VersionSchema: "none", Release: "1",
		Section: "admin", Priority: "optional",
		Maintainer: "Deskside <https://github.com/deskside/deskside/issues>",
		Vendor:     "Deskside", Homepage: "https://github.com/deskside/deskside",
		MTime: epoch,
	}
	info.RPM.BuildHost = "deskside"
	info.RPM.Compression = "xz"
	info.Deb.Compression = "xz"
	switch pkg {
	case Agent:
		info.Description = "Deskside agent: inventory, health and remote support for a Deskside relay\n" +
			"The agent service (deskside-agent.service) reports to the relay and serves remote-desktop\n" +
			"sessions of the console user through a helper in their session; the tray (deskside-tray)\n" +
			"starts at every user's login. Give DESKSIDE_RELAY and DESKSIDE_TOKEN in /etc/deskside/agent.env\n" +
			"or the installer's environment to enroll at install, and DESKSIDE_RELEASE_KEY to turn on\n" +
			"signed auto-update."
		contents = append(contents,
			file(stage("deskside-agent.service"), AgentUnit, 0o644),
			file(stage("deskside-tray.desktop"), AutostartPath, 0o644),
			conf(stage("agent.env"), AgentEnv, 0o600),
		)
		// What the consent prompt, the notices and the session banner use (make deps-agent).
		info.Recommends = []string{"zenity", "libnotify-bin", "xfonts-base"}
		info.Scripts = nfpm.Scripts{PostInstall: stage("agent-postinst.sh"), PreRemove: stage("agent-prerm.sh"), PostRemove: stage("agent-postrm.sh")}
	case Relay:
		relayConf := conf(stage("relay.yaml"), RelayConfig, 0o640)
		relayConf.FileInfo.Group = RelayUser
		info.Description = "Deskside relay: the server agents and technicians connect to\n" +
			"The relay service (deskside-relay.service) runs as the deskside system user under systemd\n" +
			"hardening, with its data in /var/lib/deskside-relay and its settings in /etc/deskside/relay.yaml;\n" +
			"the deskside command is the technicians' command line."
		contents = append(contents,
			file(stage("deskside-relay.service"), RelayUnit, 0o644),
			file(stage("low-ports.conf"), "/usr/share/doc/deskside-relay/low-ports.conf", 0o644),
			// root:deskside 0640: the relay reads it, other users do
			// not, so secrets may be written in it (preinst creates the
			// group before dpkg and rpm unpack this file).
			relayConf,
		)
		info.Scripts = nfpm.Scripts{PreInstall: stage("relay-preinst.sh"), PostInstall: stage("relay-postinst.sh"), PreRemove: stage("relay-prerm.sh"), PostRemove: stage("relay-postrm.sh")}
	default:
		return nil, fmt.Errorf("unknown package %q", pkg)
	}
	info.Contents = contents
	deps, err := dependsOn(format, libs)
	if err != nil {
		return nil, err
	}
	info.Depends = deps
	return info, nil
}

// fileName is the conventional name of info's package in format.
func fileName(info *nfpm.Info, format string) (string, error) {
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	return p.ConventionalFileName(nfpm.WithDefaults(info)), nil
}

// writePackage writes info as a package of format into dir and returns
// its path.
func writePackage(info *nfpm.Info, format, dir string) (string, error) {
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("%s %s: %w", info.Name, format, err)
	}
	path := filepath.Join(dir, p.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("build %s: %w", filepath.Base(path), err)
	}
	return path, f.Close()
}

// writeSums writes SHA256SUMS (sha256sum's format) for paths, sorted by
// name, into dir.
func writeSums(dir string, paths []string) (string, error) {
	var lines []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+filepath.Base(p)+"\n")
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	path := filepath.Join(dir, "SHA256SUMS")
	return path, os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644)
}

// AgentEnvFile is the agent package's /etc/deskside/agent.env: the
// documented template, with DESKSIDE_RELEASE_KEY set to releaseKey when it
// is not empty. A releaseKey that is not a release key fingerprint is an
// error naming the command that prints one.
func AgentEnvFile(releaseKey string) ([]byte, error) {
	b, err := embedded.ReadFile("files/agent.env")
	if err != nil {
		return nil, err
	}
	if releaseKey == "" {
		return b, nil
	}
	fp, err := envelope.ParseFingerprint(releaseKey)
	if err != nil {
		return nil, fmt.Errorf("release key %q is not a release key fingerprint (43 characters): give the one `deskside release keygen` printed (make packages RELEASE_KEY=FINGERPRINT)", releaseKey)
	}
	const line = "#DESKSIDE_RELEASE_KEY=\n"
	if !bytes.Contains(b, []byte(line)) {
		return nil, errors.New("linuxpkg: files/agent.env lacks the " + strings.TrimSpace(line) + " line")
	}
	return bytes.Replace(b, []byte(line), []byte("DESKSIDE_RELEASE_KEY="+fp+"\n"), 1), nil
}
