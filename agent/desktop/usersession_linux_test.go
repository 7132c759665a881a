package desktop_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/viewertest"
	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/agent/usersession"
	"github.com/deskside/deskside/internal/localipc"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// The console user of these tests: nobody, an unprivileged uid every
// Debian system has.
const consoleUID = 65534

// userXvfb is an Xvfb run by another uid, with its own Xauthority file,
// as a display manager runs a user's X server.
type userXvfb struct {
	display string
	auth    string
	cmd     *exec.Cmd
}

// startUserXvfb starts an Xvfb as uid, whose cookie is in an Xauthority
// file that uid owns; the server's environment names it (XAUTHORITY), as a
// session's processes do.
func startUserXvfb(t testing.TB, uid int, dir string, width, height int) *userXvfb {
	t.Helper()
	path, err := exec.LookPath("Xvfb")
	testkit.Need(t, "Xvfb", err, "install the Debian package xvfb (make deps)")
	// A user's X server makes its socket in /tmp/.X11-unix, which systems
	// keep world-writable and sticky (systemd-tmpfiles); a root Xvfb may
	// have made it 0755 on this machine.
	if err := os.MkdirAll("/tmp/.X11-unix", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod("/tmp/.X11-unix", os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "Xauthority")
	first := 300 + (os.Getpid()%40)*5
	for n := first; n < first+50; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		cookie := make([]byte, 16)
		rand.Read(cookie)
		var b []byte
		b = binary.BigEndian.AppendUint16(b, 0xffff) // FamilyWild
		for _, f := range [][]byte{nil, []byte(strconv.Itoa(n)), []byte("MIT-MAGIC-COOKIE-1"), cookie} {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
		if err := os.WriteFile(auth, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(auth, uid, uid); err != nil {
			t.Fatal(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		display := ":" + strconv.Itoa(n)
		cmd := exec.Command(path, display, "-screen", "0", fmt.Sprintf("%dx%dx24", width, height), "-nolisten", "tcp", "-noreset", "-displayfd", "3", "-auth", auth)
		cmd.Env = []string{"DISPLAY=" + display, "XAUTHORITY=" + auth, "HOME=/nonexistent"}
		cmd.ExtraFiles = []*os.File{w}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}, Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = bufio.NewReader(r).ReadString('\n')
		r.Close()
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Logf("Xvfb %s as uid %d did not start: %v: %s", display, uid, err, stderr.String())
			continue
		}
		x := &userXvfb{display: display, auth: auth, cmd: cmd}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		})
		return x
	}
	t.Fatal("no Xvfb display could be started as another uid")
	return nil
}

// openTempDir is a temporary directory other uids may enter.
func openTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "deskside-usersession-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lockedLog collects log output.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// helperPID finds the running desktop helper of bin.
func helperPID(bin string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasPrefix(cl, []byte(bin+"\x00desktop-helper\x00")) {
			return pid
		}
	}
	return 0
}

// procField reads a field of /proc/PID/status ("Uid", "VmRSS").
func procField(pid int, name string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// serviceDesk is an agent run as a root service with no display, a
// relay, and the console user's (another uid's) Xvfb that logind's
// record names.
type serviceDesk struct {
	xs     *userXvfb
	tc     *testclient.Client
	bin    string
	record string
	runner *usersession.Runner
	logs   *lockedLog
	cs     desksidev1.ConsoleServiceClient
	ctx    context.Context
	device string
	socket string
}

// serviceDeskOptions adjust newServiceDeskWith's desk.
type serviceDeskOptions struct {
	width, height int
	// consentTimeout is the prompt's (default 45 s, which
	// TestServiceAsksTheConsoleUser checks is passed on).
	consentTimeout time.Duration
	// trays serves the users' trays on the service's socket
	// (agent/traysvc), as deskside-agent run does.
	trays bool
}

func newServiceDesk(t testing.TB, width, height int) *serviceDesk {
	return newServiceDeskWith(t, serviceDeskOptions{width: width, height: height})
}

func newServiceDeskWith(t testing.TB, o serviceDeskOptions) *serviceDesk {
	width, height := o.width, o.height
	testkit.Heavy(t, "starts Xvfb, builds the agent")
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the test runs the agent service as root and the console user as another uid", "run the test as root (CI does)")
	dir := openTempDir(t)
	userDir := filepath.Join(dir, "home")
	if err := os.Mkdir(userDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(userDir, consoleUID, consoleUID); err != nil {
		t.Fatal(err)
	}
	xs := startUserXvfb(t, consoleUID, userDir, width, height)

	// The test draws the picture as root, with the user's cookie.
	t.Setenv("XAUTHORITY", xs.auth)
	tc, err := testclient.Start(xs.display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	// The service's own environment has no display.
	t.Setenv("DISPLAY", "")
	os.Unsetenv("DISPLAY")
	os.Unsetenv("XAUTHORITY")

	bin := filepath.Join(dir, "deskside-agent")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/deskside/deskside/agent/cmd/deskside-agent").CombinedOutput(); err != nil {
		t.Fatalf("build deskside-agent: %v\n%s", err, out)
	}
	sessDir := filepath.Join(dir, "sessions")
	os.Mkdir(sessDir, 0o755)
	record := filepath.Join(sessDir, "c2")
	if err := os.WriteFile(record, []byte("# This is private data. Do not parse.\nUID=65534\nUSER=nobody\nACTIVE=1\nIS_DISPLAY=1\nSTATE=active\nREMOTE=0\nTYPE=x11\nCLASS=user\nSEAT=seat0\nDISPLAY="+xs.display+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs, helperLogs lockedLog
	var trays *traysvc.Service
	var serve func(*localipc.Conn, *desksidev1.LocalMessage)
	if o.trays {
		trays = &traysvc.Service{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		serve = trays.Serve
	}
	socket := filepath.Join(dir, "run", "agent.sock")
	runner, err := usersession.NewRunner(usersession.Config{
		Socket: socket, Exe: bin, Serve: serve,
		Finder:       &usersession.Finder{SessionsDir: sessDir, Loginctl: "/bin/false"},
		Logger:       slog.New(slog.NewJSONHandler(&logs, nil)),
		HelperStderr: &helperLogs,
		// Passed to the helper's prompt (TestServiceAsksTheConsoleUser).
		ConsentTimeout: cmp.Or(o.consentTimeout, 45*time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		runner.Close()
		if t.Failed() {
			t.Logf("service log:\n%s\nhelper log:\n%s", logs.String(), helperLogs.String())
		}
	})

	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	var desk link.DesktopRunner = runner
	ao := servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: desk}
	if trays != nil {
		// As deskside-agent run wires it: the screen owner's trays see
		// each session and can end it.
		ao.Desktop = trays.Sessions(runner, traysvc.NoOwner)
		ao.OnHelpUpdate = trays.Push
	}
	a := servertest.RunAgent(t, st, ao)
	if trays != nil {
		trays.SetLink(a.Link)
	}
	cs, ctx := r.Admin(t)
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online")
		}
		return nil
	})
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}

	return &serviceDesk{xs: xs, tc: tc, bin: bin, record: record, runner: runner, logs: &logs, cs: cs, ctx: ctx, device: st.DeviceID, socket: socket}
}

// helperStart is the runner's measure of the helper's start (launch to
// its hello), from its log.
func (d *serviceDesk) helperStart() time.Duration {
	for line := range strings.SplitSeq(d.logs.String(), "\n") {
		if strings.Contains(line, "desktop helper started") {
			var rec struct{ Took string }
			json.Unmarshal([]byte(line), &rec)
			took, _ := time.ParseDuration(rec.Took)
			return took
		}
	}
	return 0
}

// TestServiceServesTheConsoleUsersSession runs the agent's desktop as a
// root service does, with no display of its own: the console user
// (another uid) owns an Xvfb with its own Xauthority, logind's record of
// the session names it, and the session's video and input go through the
// helper the service launches as that user. A killed helper ends the
// session saying so; so does the user logging out mid-session (logind
// drops the record, the X server goes); with no session left, a new one
// ends with "no user is logged in at the console".
func TestServiceServesTheConsoleUsersSession(t *testing.T) {
	d := newServiceDesk(t, 1024, 768)
	xs, tc, bin, record, cs, ctx := d.xs, d.tc, d.bin, d.record, d.cs, d.ctx
	v, err := openViewer(t, cs, ctx, d.device, false)
	if err != nil {
		t.Fatal(err)
	}
	f := v.frame(30 * time.Second)
	w, h := f.Width, f.Height
	if w != 1024 || h != 768 {
		t.Fatalf("frame %dx%d, want the user's 1024x768 display", w, h)
	}
	for i, p := range [][2]int{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}} {
		want := testclient.DefaultQuadrants[i]
		r, g, b := f.RGB(p[0], p[1])
		if !near(r, want.R) || !near(g, want.G) || !near(b, want.B) {
			t.Errorf("quadrant %d at %v: got %d,%d,%d want %v", i, p, r, g, b, want)
		}
	}
	pid := helperPID(bin)
	if pid == 0 {
		t.Fatal("no desktop helper process")
	}
	if uid := strings.Fields(procField(pid, "Uid")); len(uid) == 0 || uid[0] != strconv.Itoa(consoleUID) {
		t.Fatalf("the helper runs as uid %v, want %d", uid, consoleUID)
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range strings.Split(strings.TrimRight(string(env), "\x00"), "\x00") {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "DISPLAY", "XAUTHORITY", "USER", "LOGNAME", "HOME", "XDG_RUNTIME_DIR":
		default:
			t.Errorf("the helper's environment has %s from the service", k)
		}
	}
	if !strings.Contains(string(env), "DISPLAY="+xs.display+"\x00") || !strings.Contains(string(env), "XAUTHORITY="+xs.auth) {
		t.Errorf("the helper's environment %q lacks the session's display and authority", env)
	}

	// Input reaches the user's display through the helper.
	var dc interface{ SendText(string) error }
	select {
	case c := <-v.Input:
		dc = c
	case <-time.After(10 * time.Second):
		t.Fatal("input channel did not open")
	}
	tc.ResetEvents()
	for _, m := range []map[string]any{{"t": "m", "x": 300, "y": 200}, {"t": "b", "b": 1, "d": true}, {"t": "b", "b": 1, "d": false}} {
		b, _ := json.Marshal(m)
		if err := dc.SendText(string(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tc.WaitFor(func(evs []testclient.Event) bool {
		for _, e := range evs {
			if e.Kind == testclient.ButtonPress && e.Button == 1 && e.RootX == 300 && e.RootY == 200 {
				return true
			}
		}
		return false
	}, 10*time.Second); err != nil {
		t.Fatalf("the click did not arrive: %v", err)
	}

	// Figures for the ADR: the helper's start (launch to its hello) and
	// its RSS with a session open on an idle screen.
	time.Sleep(2 * time.Second)
	t.Logf("helper start: %v; helper RSS in an idle session: %s", d.helperStart(), procField(pid, "VmRSS"))

	// The helper dies while the user is still logged in: the session ends
	// saying so.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-v.Ended:
		if reason != "the desktop helper in nobody's session stopped (signal: killed); the session ended" {
			t.Fatalf("end reason after the helper died: %q", reason)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not end when its helper died")
	}
	v.Close()

	// The user logs out mid-session: logind drops the session and its X
	// server goes; the session ends saying so.
	v, err = openViewer(t, cs, ctx, d.device, false)
	if err != nil {
		t.Fatal(err)
	}
	v.frame(30 * time.Second)
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	if err := xs.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-v.Ended:
		if !strings.HasPrefix(reason, "nobody logged out; the session ended") {
			t.Fatalf("end reason after the user logged out: %q", reason)
		}
		t.Logf("end reason after the logout: %s", reason)
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not end when the user logged out")
	}
	v.Close()

	// Nobody at the console: a new session ends at once, saying so. (The
	// relay may still be letting go of the last one, which the device's
	// one-session limit counts: retry while it says so.)
	var v2 *viewer
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v2, err = openViewer(t, cs, ctx, d.device, false)
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-v2.Ended:
		if reason != "no user is logged in at the console" {
			t.Fatalf("end reason with no session: %q", reason)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the session with nobody at the console did not end")
	}
}

// procCPU is the CPU time pid used so far (utime + stime).
func procCPU(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// The fields after the command name, which is in parentheses.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	fs := strings.Fields(string(rest))
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// BenchmarkDesktopHelper measures the service → user-session path with a
// 1080p screen: the helper's start (the runner launches it as the user →
// its hello on the socket), a session's request → first decoded frame
// through it, and the helper's RSS and CPU over 10 s of a session on an
// idle screen.
func BenchmarkDesktopHelper(b *testing.B) {
	d := newServiceDesk(b, 1920, 1080)
	v, err := viewertest.Open(b, d.cs, d.ctx, d.device, viewertest.Options{Quiet: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Frame(30 * time.Second); err != nil {
		b.Fatal(err)
	}
	firstFrame := time.Since(v.Requested)
	pid := helperPID(d.bin)
	if pid == 0 {
		b.Fatal("no desktop helper process")
	}
	time.Sleep(2 * time.Second)
	cpu0, t0 := procCPU(pid), time.Now()
	time.Sleep(10 * time.Second)
	cpu := float64(procCPU(pid)-cpu0) / float64(time.Since(t0)) * 100
	rssKB, _ := strconv.Atoi(strings.TrimSuffix(procField(pid, "VmRSS"), " kB"))
	b.ReportMetric(float64(d.helperStart().Microseconds())/1000, "helper-start-ms")
	b.ReportMetric(float64(firstFrame.Microseconds())/1000, "first-frame-ms")
	b.ReportMetric(float64(rssKB)/1024, "helper-RSS-MB")
	b.ReportMetric(cpu, "helper-CPU-%")
	b.ReportMetric(0, "ns/op")
	v.Close()
}
