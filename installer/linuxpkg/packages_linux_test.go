package linuxpkg

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/agent/update"
	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/internal/testpoll"
	"github.com/deskside/deskside/proto/wire/envelope"
)

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// MaxAgentDeb is the target for the agent package (.deb, compressed).
const MaxAgentDeb = 15 << 20

// TestPackages builds the packages twice and compares the bytes, checks
// the .rpm files with rpm, then installs the .deb packages on this
// machine with dpkg (CI runs as root on Debian): the relay first, started
// from its configuration as its own user, then the agent, enrolled at
// install against that relay; and removes and purges both, which must
// leave the machine as it was.
func TestPackages(t *testing.T) {
	testkit.Heavy(t, "builds the binaries and packages twice, installs them with dpkg")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// Both builds bake the same release key into agent.env (make packages
	// RELEASE_KEY=…), which the install then pins.
	baked := testFingerprint(t)
	a, err := Build(ctx, Options{Root: root, Out: filepath.Join(dir, "a"), Logger: testLogger(t), ReleaseKey: baked})
	if err != nil {
		t.Fatal(err)
	}
	// The second build, for reproducibility, rebuilds every binary but
	// packages only the .deb files: nfpm writes both formats from the
	// same description, and xz-compressing the .rpm files again would
	// add minutes and compare nothing the .deb files do not (their
	// fixed times are checked in the rpm step).
	b, err := Build(ctx, Options{Root: root, Out: filepath.Join(dir, "b"), Formats: []string{"deb"}, ReleaseKey: baked})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("reproducible", func(t *testing.T) {
		if len(a.Files) != 4+2+1 || len(b.Files) != 2+2+1 {
			t.Fatalf("the builds wrote %d and %d files, want 7 (4 packages, 2 SBOMs, SHA256SUMS) and 5 (.deb files only)", len(a.Files), len(b.Files))
		}
		for _, y := range b.Files[:len(b.Files)-1] { // not SHA256SUMS: it lists what was built
			x := filepath.Join(dir, "a", filepath.Base(y))
			bx, _ := os.ReadFile(x)
			by, _ := os.ReadFile(y)
			if len(bx) == 0 || !bytes.Equal(bx, by) {
				t.Errorf("%s and %s differ: the build is not reproducible", x, y)
			}
		}
	})

	t.Run("sums", func(t *testing.T) {
		_, err := exec.LookPath("sha256sum")
		testkit.Need(t, "sha256sum", err, "install the Debian package coreutils")
		cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
		cmd.Dir = filepath.Join(dir, "a")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(out), ": OK\n") != 6 {
			t.Fatalf("sha256sum --check SHA256SUMS: %v\n%s", err, out)
		}
	})

	t.Run("size", func(t *testing.T) {
		fi, err := os.Stat(a.Packages[Agent+".deb"])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("agent .deb: %.1f MB (%s)", float64(fi.Size())/(1<<20), filepath.Base(fi.Name()))
		if fi.Size() > MaxAgentDeb {
			t.Errorf("agent .deb is %d bytes, above the %d MiB target", fi.Size(), MaxAgentDeb>>20)
		}
	})

	t.Run("rpm", func(t *testing.T) { checkRPMs(t, a) })

	t.Run("dpkg", func(t *testing.T) {
		testkit.NeedOK(t, "root", os.Geteuid() == 0, "installing packages needs root", "run the tests as root (CI does)")
		for _, tool := range []string{"dpkg", "unshare", "setpriv"} {
			_, err := exec.LookPath(tool)
			testkit.Need(t, tool, err, "run the tests on Debian or Ubuntu (util-linux, dpkg)")
		}
		// The install runs in a private mount namespace with overlays on
		// /etc, /usr and /var/lib: dpkg, the maintainer scripts and the
		// relay are real and see this machine, but what they write stays
		// in the overlay, so a relay's data in /var/lib/deskside-relay of
		// another test or session is neither read nor purged, and a test
		// that dies halfway leaves nothing installed.
		cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "--",
			os.Args[0], "-test.run", "^TestInstallIsolated$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), isolatedEnv+"=1", "DESKSIDE_TEST_BAKED_KEY="+baked,
			"DESKSIDE_TEST_AGENT_DEB="+a.Packages[Agent+".deb"], "DESKSIDE_TEST_RELAY_DEB="+a.Packages[Relay+".deb"])
		out, err := cmd.CombinedOutput()
		t.Logf("install, enrollment, removal and purge (isolated):\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestInstallIsolated") {
			t.Fatalf("the isolated install test failed: %v", err)
		}
	})
}

// isolatedEnv marks the process TestPackages starts in a private mount
// namespace to run TestInstallIsolated.
const isolatedEnv = "DESKSIDE_TEST_PACKAGES_ISOLATED"

// TestInstallIsolated installs, enrolls, removes and purges the .deb
// packages that TestPackages built, in the mount namespace it runs this
// in: overlays on /etc, /usr and /var/lib keep every change away from the
// machine. Run on its own it has nothing to install and skips.
func TestInstallIsolated(t *testing.T) {
	if os.Getenv(isolatedEnv) != "1" {
		t.Skip("run by TestPackages in a private mount namespace, with the packages it built")
	}
	base := t.TempDir()
	for _, dir := range []string{"/etc", "/usr", "/var/lib"} {
		up, work := filepath.Join(base, dir, "upper"), filepath.Join(base, dir, "work")
		if err := os.MkdirAll(up, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, nil, "mount", "-t", "overlay", "overlay", "-o", "lowerdir="+dir+",upperdir="+up+",workdir="+work, dir)
		t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	}
	// A fresh /run: the machine's own holds other agents' sockets
	// (/run/deskside-agent, which a purge removes), and where systemd runs
	// the scripts would ask it to start units that exist only in the
	// overlay; without /run/systemd/system they act as in a container.
	run(t, nil, "mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
	t.Cleanup(func() { exec.Command("umount", "-l", "/run").Run() })
	// What other tests or sessions left under Deskside's names is hidden
	// in the overlay, so the machine looks as before a first install.
	for _, p := range []string{AgentState, RelayData, "/etc/deskside"} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := user.Lookup(RelayUser); err == nil {
		run(t, nil, "userdel", RelayUser)
	}
	if _, err := user.LookupGroup(RelayUser); err == nil {
		run(t, nil, "groupdel", RelayUser)
	}
	for _, pkg := range []string{Agent, Relay} {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", pkg).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 && !bytes.HasPrefix(out, []byte("un")) {
			run(t, nil, "dpkg", "--purge", pkg)
		}
	}
	installCycle(t, os.Getenv("DESKSIDE_TEST_AGENT_DEB"), os.Getenv("DESKSIDE_TEST_RELAY_DEB"), os.Getenv("DESKSIDE_TEST_BAKED_KEY"))
}

// checkRPMs reads the .rpm files back with rpm: digests, files with modes
// and owners, configuration files, requirements and scripts.
func checkRPMs(t *testing.T, r *Result) {
	_, err := exec.LookPath("rpm")
	testkit.Need(t, "rpm", err, "install the Debian package rpm (make deps)")
	rpm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("rpm", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	files := func(path string) map[string]string {
		out := rpm("-qp", "--qf", `[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]`, path)
		m := map[string]string{}
		for line := range strings.Lines(out) {
			name, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			m[name] = rest
		}
		return m
	}
	for _, pkg := range []string{Agent, Relay} {
		path := r.Packages[pkg+".rpm"]
		if out := rpm("-K", path); !strings.Contains(out, "digests OK") {
			t.Errorf("rpm -K %s: %s", filepath.Base(path), out)
		}
		if v := strings.TrimSpace(rpm("-qp", "--qf", "%{VERSION}", path)); v != r.Version {
			t.Errorf("%s version %q, want %q", pkg, v, r.Version)
		}
		// What would make two builds of the .rpm differ is fixed: the
		// build time and every file's time are the epoch, the host is set
		// (the reproducibility step compares only the .deb files).
		epoch := strconv.FormatInt(r.Epoch.Unix(), 10)
		if v := strings.TrimSpace(rpm("-qp", "--qf", "%{BUILDTIME} %{BUILDHOST}", path)); v != epoch+" deskside" {
			t.Errorf("%s rpm build time and host %q, want %q", pkg, v, epoch+" deskside")
		}
		for line := range strings.Lines(rpm("-qp", "--qf", `[%{FILEMTIMES}\n]`, path)) {
			if strings.TrimSpace(line) != epoch {
				t.Errorf("%s rpm: a file's time is %s, want the epoch %s", pkg, strings.TrimSpace(line), epoch)
				break
			}
		}
	}
	agent := files(r.Packages[Agent+".rpm"])
	for name, want := range map[string]string{
		"/usr/bin/deskside-agent": "-rwxr-xr-x root:root ", "/usr/bin/deskside-tray": "-rwxr-xr-x root:root ",
		AgentUnit: "-rw-r--r-- root:root ", AutostartPath: "-rw-r--r-- root:root ", AgentEnv: "-rw------- root:root cn",
	} {
		if got, ok := agent[name]; !ok || strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("agent rpm: %s is %q, want %q", name, got, want)
		}
	}
	relay := files(r.Packages[Relay+".rpm"])
	for name, want := range map[string]string{
		"/usr/bin/deskside-relay": "-rwxr-xr-x root:root ", "/usr/bin/deskside": "-rwxr-xr-x root:root ",
		RelayUnit: "-rw-r--r-- root:root ", RelayConfig: "-rw-r----- root:" + RelayUser + " cn",
	} {
		if got, ok := relay[name]; !ok || strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("relay rpm: %s is %q, want %q", name, got, want)
		}
	}
	if req := rpm("-qp", "--requires", r.Packages[Agent+".rpm"]); !strings.Contains(req, "libvpx.so.") {
		t.Errorf("agent rpm does not require libvpx:\n%s", req)
	}
	if s := rpm("-qp", "--scripts", r.Packages[Relay+".rpm"]); !strings.Contains(s, "useradd --system") || !strings.Contains(s, "preinstall") {
		t.Errorf("relay rpm: no preinstall script creating the user:\n%s", s)
	}
}

// watched are where the packages put or leave anything; the snapshot of
// them before the installs must equal the one after the purges.
var watched = []string{
	"/etc/deskside", "/etc/xdg/autostart", "/etc/systemd/system", "/usr/bin", "/usr/lib/systemd/system",
	"/usr/share/doc/deskside-agent", "/usr/share/doc/deskside-relay", AgentState, RelayData, "/run/deskside-agent",
}

// snapshot lists every file under the watched paths (in /usr/bin and the
// system unit directory only Deskside's names) with mode and owner, and
// the deskside lines of /etc/passwd and /etc/group.
func snapshot(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, root := range watched {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a path that does not exist lists nothing
			}
			if (root == "/usr/bin" || root == "/usr/lib/systemd/system") && p != root && !strings.HasPrefix(d.Name(), "deskside") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err == nil {
				out = append(out, fmt.Sprintf("%s %o %d:%d", p, st.Mode, st.Uid, st.Gid))
			}
			return nil
		})
	}
	for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"} {
		b, _ := os.ReadFile(f)
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, RelayUser+":") {
				out = append(out, f+": "+strings.TrimSpace(line))
			}
		}
	}
	slices.Sort(out)
	return out
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mode checks a path's permission bits, owner and group.
func mode(t *testing.T, path string, perm os.FileMode, owner, group string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	got := fmt.Sprintf("%v %s:%s", os.FileMode(st.Mode).Perm(), name(u), gname(g))
	want := fmt.Sprintf("%v %s:%s", perm, owner, group)
	if got != want {
		t.Errorf("%s is %s, want %s", path, got, want)
	}
}

func name(u *user.User) string {
	if u == nil {
		return "?"
	}
	return u.Username
}

func gname(g *user.Group) string {
	if g == nil {
		return "?"
	}
	return g.Name
}

// conffiles are the files dpkg holds as a package's configuration.
func conffiles(t *testing.T, pkg string) string {
	return run(t, nil, "dpkg-query", "-W", "-f", "${Conffiles}", pkg)
}

// verifyUnit runs systemd-analyze verify on an installed unit.
func verifyUnit(t *testing.T, unit string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze is not installed: %s not verified", unit)
		return
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
	// Complaints about other units of this machine are not ours.
	var ours []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, filepath.Base(unit)) {
			ours = append(ours, line)
		}
	}
	if len(ours) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, strings.Join(ours, ""))
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testFingerprint is the fingerprint of a new Ed25519 key, as `deskside
// release keygen` prints it.
func testFingerprint(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return envelope.Fingerprint(pub)
}

// pinned is the release key the installed agent pinned, "" for none.
func pinned(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(AgentState, update.PinFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// installCycle installs, enrolls, removes and purges the packages; baked
// is the release key the agent package's agent.env holds.
func installCycle(t *testing.T, agentDeb, relayDeb, baked string) {
	before := snapshot(t)
	var relayProc *exec.Cmd
	relayExited := make(chan error, 1)
	t.Cleanup(func() {
		if relayProc != nil {
			relayProc.Process.Kill()
			<-relayExited
		}
		// Whatever failed, leave the machine as it was.
		exec.Command("dpkg", "--purge", Agent, Relay).Run()
		if after := snapshot(t); !slices.Equal(before, after) {
			t.Errorf("after purging both packages the machine differs:\nbefore: %q\nafter:  %q", diff(before, after), diff(after, before))
		}
	})

	// The relay: user, data directory, hardened unit, configuration.
	run(t, nil, "dpkg", "-i", relayDeb)
	u, err := user.Lookup(RelayUser)
	if err != nil {
		t.Fatalf("the relay package created no %s user: %v", RelayUser, err)
	}
	pw := run(t, nil, "getent", "passwd", RelayUser)
	if f := strings.Split(strings.TrimSpace(pw), ":"); len(f) != 7 || f[5] != RelayData || !strings.HasSuffix(f[6], "/nologin") || f[2] == "0" {
		t.Errorf("deskside user: %q; want a system user with home %s and no login shell", pw, RelayData)
	}
	mode(t, RelayData, 0o750, RelayUser, RelayUser)
	mode(t, "/usr/bin/deskside-relay", 0o755, "root", "root")
	mode(t, "/usr/bin/deskside", 0o755, "root", "root")
	mode(t, RelayUnit, 0o644, "root", "root")
	mode(t, RelayConfig, 0o640, "root", RelayUser)
	if c := conffiles(t, Relay); !strings.Contains(c, RelayConfig) {
		t.Errorf("relay conffiles %q lack %s", c, RelayConfig)
	}
	if b, _ := os.ReadFile(RelayConfig); !bytes.Equal(b, RelayYAML()) {
		t.Errorf("%s is not the relay's example with the package's data directory:\n%s", RelayConfig, b)
	}
	// asRelay runs the relay's binary as the unit does: its user, no
	// capabilities (systemd is not PID 1 in CI, so the unit itself cannot
	// be started), only HOME in the environment.
	asRelay := func(args ...string) *exec.Cmd {
		cmd := exec.Command("setpriv", append([]string{"--reuid", u.Uid, "--regid", u.Gid, "--init-groups",
			"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "/usr/bin/deskside-relay"}, args...)...)
		cmd.Env, cmd.Dir = []string{"HOME=" + RelayData}, "/"
		return cmd
	}
	configCheck := func(what string) {
		t.Helper()
		out, err := asRelay("config", "check").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "configuration file: "+RelayConfig) || !strings.Contains(string(out), "configuration OK") {
			t.Fatalf("deskside-relay config check on %s: %v\n%s", what, err, out)
		}
		if !strings.Contains(string(out), "data: \""+RelayData+"\"") {
			t.Errorf("config check on %s: data is not %s:\n%s", what, RelayData, out)
		}
	}
	configCheck("the packaged " + RelayConfig)
	verifyUnit(t, RelayUnit)
	wants := "/etc/systemd/system/multi-user.target.wants/"
	if _, err := exec.LookPath("systemctl"); err == nil {
		if _, err := os.Lstat(wants + "deskside-relay.service"); err != nil {
			t.Errorf("the relay's unit is not enabled: %v", err)
		}
	}

	// First start, from the configuration file edited as an admin would
	// (free ports; the first password inline, which the file's mode 0640
	// allows), as the relay's user with no capabilities.
	relayAddr, adminAddr := freePort(t), freePort(t)
	password := "packages-test-" + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(RelayConfig, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "\n# The test's settings.\nlisten: %q\nadmin_listen: %q\nweb_listen: off\nturn_listen: off\nadmin_password: %q\n",
		relayAddr, adminAddr, password)
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	configCheck("the edited " + RelayConfig)
	relayLog := filepath.Join(t.TempDir(), "relay.log")
	logf, err := os.Create(relayLog)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	relayProc = asRelay("--config", RelayConfig) // the unit's ExecStart
	relayProc.Stdout, relayProc.Stderr = logf, logf
	if err := relayProc.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { relayExited <- relayProc.Wait() }()
	ca := filepath.Join(RelayData, "ca.pem")
	testpoll.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		select {
		case err := <-relayExited:
			relayExited <- err
			b, _ := os.ReadFile(relayLog)
			t.Fatalf("the relay exited at its first start (%v):\n%s", err, b)
		default:
		}
		c, err := net.Dial("tcp", relayAddr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	// What the relay created at its first start is its user's.
	for _, f := range []string{ca, filepath.Join(RelayData, "ca-key.pem")} {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil || strconv.Itoa(int(st.Uid)) != u.Uid {
			t.Errorf("%s: not created by the %s user (uid %d, %v)", f, RelayUser, st.Uid, err)
		}
	}

	// A token from the relay through the packaged CLI.
	cliEnv := []string{"DESKSIDE_CONFIG=" + filepath.Join(t.TempDir(), "cli.json")}
	login := exec.Command("/usr/bin/deskside", "login", "--relay", relayAddr, "--ca", ca, "--user", "admin", "--password-stdin")
	login.Env, login.Stdin = append(os.Environ(), cliEnv...), strings.NewReader(password+"\n")
	if out, err := login.CombinedOutput(); err != nil {
		b, _ := os.ReadFile(relayLog)
		t.Fatalf("deskside login: %v\n%s\nrelay log:\n%s", err, out, b)
	}
	token := strings.TrimSpace(run(t, cliEnv, "/usr/bin/deskside", "token", "create", "-q", "--uses", "2"))

	// The agent, enrolled at install from a file dropped beforehand.
	if err := os.MkdirAll("/etc/deskside", 0o755); err != nil {
		t.Fatal(err)
	}
	fileKey, envKey := testFingerprint(t), testFingerprint(t)
	dropped := "DESKSIDE_RELAY=" + relayAddr + "\nDESKSIDE_TOKEN=\"" + token + "\"\nDESKSIDE_RELEASE_KEY=" + fileKey + "\n"
	if err := os.WriteFile(AgentEnv, []byte(dropped), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, "dpkg", "-i", "--force-confold", agentDeb)
	if _, err := os.Stat(filepath.Join(AgentState, "agent.json")); err != nil {
		t.Fatalf("the agent did not enroll at install from %s: %v\n%s", AgentEnv, err, out)
	}
	if b, _ := os.ReadFile(AgentEnv); string(b) != dropped {
		t.Errorf("dpkg replaced the dropped %s:\n%s", AgentEnv, b)
	}
	if got := pinned(t); got != fileKey {
		t.Errorf("release key pinned from the dropped %s: %q, want %q\n%s", AgentEnv, got, fileKey, out)
	}
	mode(t, filepath.Join(AgentState, update.PinFile), 0o600, "root", "root")
	mode(t, "/usr/bin/deskside-agent", 0o755, "root", "root")
	mode(t, "/usr/bin/deskside-tray", 0o755, "root", "root")
	mode(t, AgentUnit, 0o644, "root", "root")
	mode(t, AutostartPath, 0o644, "root", "root")
	mode(t, AgentEnv, 0o600, "root", "root")
	mode(t, AgentState, 0o700, "root", "root")
	if c := conffiles(t, Agent); !strings.Contains(c, AgentEnv) {
		t.Errorf("agent conffiles %q lack %s", c, AgentEnv)
	}
	if b, _ := os.ReadFile(AutostartPath); !bytes.Equal(b, tray.AutostartEntry("/usr/bin/deskside-tray")) {
		t.Errorf("%s:\n%s", AutostartPath, b)
	}
	verifyUnit(t, AgentUnit)
	if _, err := exec.LookPath("systemctl"); err == nil {
		if _, err := os.Lstat(wants + "deskside-agent.service"); err != nil {
			t.Errorf("the agent's unit is not enabled: %v", err)
		}
	}
	devices := run(t, cliEnv, "/usr/bin/deskside", "devices", "list")
	host, _ := os.Hostname()
	if !strings.Contains(devices, host) {
		t.Errorf("the relay does not list the agent enrolled at install (%s):\n%s", host, devices)
	}

	// Purge takes the identity; an install with the environment enrolls again.
	run(t, nil, "dpkg", "--purge", Agent)
	for _, p := range []string{AgentState, AgentEnv, AgentUnit, AutostartPath, "/usr/bin/deskside-agent", wants + "deskside-agent.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("dpkg --purge %s left %s", Agent, p)
		}
	}
	out = run(t, []string{"DESKSIDE_RELAY=" + relayAddr, "DESKSIDE_TOKEN=" + token, "DESKSIDE_RELEASE_KEY=" + envKey}, "dpkg", "-i", agentDeb)
	if _, err := os.Stat(filepath.Join(AgentState, "agent.json")); err != nil {
		t.Fatalf("the agent did not enroll at install from the environment: %v\n%s", err, out)
	}
	if got := pinned(t); got != envKey {
		t.Errorf("release key pinned from the environment (over the packaged agent.env's %s): %q, want %q\n%s", baked, got, envKey, out)
	}
	if b, _ := os.ReadFile(AgentEnv); !strings.Contains(string(b), "\nDESKSIDE_RELEASE_KEY="+baked+"\n") {
		t.Errorf("the packaged %s lacks the release key the build baked in (%s):\n%s", AgentEnv, baked, b)
	}
	if b, _ := os.ReadFile(AgentEnv); strings.Contains(string(b), token) {
		t.Errorf("%s holds the token from the environment", AgentEnv)
	}

	// Without relay and token the install says what the agent waits for.
	run(t, nil, "dpkg", "--purge", Agent)
	out = run(t, []string{"DESKSIDE_RELAY=", "DESKSIDE_TOKEN="}, "dpkg", "-i", agentDeb)
	if !strings.Contains(out, "deskside-agent enroll --relay HOST:PORT --token TOKEN") {
		t.Errorf("an install without relay and token does not say how to enroll:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(AgentState, "agent.json")); err == nil {
		t.Error("the agent enrolled without a relay and token")
	}
	if got := pinned(t); got != baked {
		t.Errorf("release key pinned from the packaged %s: %q, want the baked %q\n%s", AgentEnv, got, baked, out)
	}

	// An agent.env without a release key: the install works, auto-update
	// stays off and the install says how to turn it on.
	run(t, nil, "dpkg", "--purge", Agent)
	if err := os.MkdirAll("/etc/deskside", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(AgentEnv, []byte("# no key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(t, []string{"DESKSIDE_RELEASE_KEY="}, "dpkg", "-i", "--force-confold", agentDeb)
	if got := pinned(t); got != "" {
		t.Errorf("a release key was pinned without one given: %q", got)
	}
	if !strings.Contains(out, "auto-update is off") || !strings.Contains(out, "deskside-agent update pin FINGERPRINT") {
		t.Errorf("an install without a release key does not say how to turn auto-update on:\n%s", out)
	}

	// A release key that is not a fingerprint fails the install, naming
	// the command that prints one; fixed, the configuration completes.
	cmd := exec.Command("dpkg", "-i", "--force-confold", agentDeb)
	cmd.Env = append(os.Environ(), "DESKSIDE_RELEASE_KEY=not-a-fingerprint")
	bad, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "deskside release keygen") {
		t.Errorf("an install with a bad release key: %v, want a failure naming deskside release keygen\n%s", err, bad)
	}
	if got := pinned(t); got != "" {
		t.Errorf("a bad release key left the pin %q", got)
	}
	out = run(t, []string{"DESKSIDE_RELEASE_KEY=" + envKey}, "dpkg", "--configure", Agent)
	if got := pinned(t); got != envKey {
		t.Errorf("after fixing the key, dpkg --configure pinned %q, want %q\n%s", got, envKey, out)
	}

	// Remove keeps configuration and state; purge takes everything.
	relayProc.Process.Signal(syscall.SIGTERM)
	<-relayExited
	relayProc = nil
	run(t, nil, "dpkg", "-r", Agent, Relay)
	for _, p := range []string{"/usr/bin/deskside-agent", "/usr/bin/deskside-relay", "/usr/bin/deskside", AgentUnit, RelayUnit, AutostartPath,
		wants + "deskside-agent.service", wants + "deskside-relay.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	for _, p := range []string{AgentEnv, RelayConfig, filepath.Join(RelayData, "ca.pem")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dpkg -r removed %s, which only a purge removes: %v", p, err)
		}
	}
	run(t, nil, "dpkg", "-P", Agent, Relay)
	if _, err := user.Lookup(RelayUser); err == nil {
		t.Errorf("dpkg -P %s left the %s user", Relay, RelayUser)
	}
	// The cleanup compares the whole snapshot with the one before.
}

// diff is what a holds that b does not.
func diff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, x)
		}
	}
	return d
}
