package desktop_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// trayEnv makes the test binary the console user's tray (it runs as that
// uid): it connects to the agent service's socket the variable names,
// serves the tray's page on loopback, prints its launch URL and runs
// until its stdin closes.
const trayEnv = "DESKSIDE_TEST_TRAY_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(trayEnv); sock != "" {
		os.Exit(runTray(sock))
	}
	os.Exit(m.Run())
}

func runTray(sock string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := tray.DialAgentAt(ctx, sock, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tray:", err)
		return 1
	}
	display, xauth := tray.SessionDisplay()
	go tray.RegisterSession(ctx, sock, display, xauth, log)
	srv, err := tray.StartServer(tray.ServerOptions{Agent: a, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tray:", err)
		return 1
	}
	defer srv.Close()
	fmt.Println(srv.URL(""))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startTray runs the console user's tray (this test binary as uid) on
// the service's socket and returns its page's launch URL.
func startTray(t *testing.T, uid int, socket, display, xauthority string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "deskside-tray-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "tray")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{trayEnv + "=" + socket, "PATH=/usr/bin:/bin", "HOME=" + dir, "DISPLAY=" + display, "XAUTHORITY=" + xauthority}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var stderr lockedLog
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		if t.Failed() {
			t.Logf("tray log:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the tray did not start: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(line)
}

// TestUserSide is the user's side end to end, with the agent running as a
// root service and the user (another uid) logged in on an Xvfb display
// with their tray connected to the service: an attended session asks
// them (as their uid, on their display); Deny ends it with no media and
// "denied" for the technician; no answer denies; allowing a view does not
// allow control, which asks again; Allow gives video, the
// tray page shows who controls the screen, and End session there stops
// the capture at once; an unattended session does not ask, but the tray
// and the on-screen banner show it; without logind's record the display
// the tray registered is served.
func TestUserSide(t *testing.T) {
	chrome := os.Getenv("DESKSIDE_CHROMIUM")
	if chrome == "" {
		chrome = "/usr/bin/chromium"
	}
	_, err := os.Stat(chrome)
	testkit.Need(t, "Chromium", err, "install the Debian package chromium (make deps) or set DESKSIDE_CHROMIUM")
	for _, p := range []string{"zenity", "xdotool"} {
		_, err := exec.LookPath(p)
		testkit.Need(t, p, err, "apt-get install "+p+" (make deps)")
	}
	const answerWithin = 6 * time.Second
	d := newServiceDeskWith(t, serviceDeskOptions{width: 800, height: 600, consentTimeout: answerWithin, trays: true})
	X := xdisp{display: d.xs.display, auth: d.xs.auth}
	setMode := func(m desksidev1.DesktopPolicyMode) {
		t.Helper()
		if _, err := d.cs.SetDevicePolicy(d.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: d.device, Mode: m.Enum()}); err != nil {
			t.Fatal(err)
		}
	}
	setMode(desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED)
	// idle waits until no helper runs and no prompt shows (one session
	// at a time).
	idle := func() {
		t.Helper()
		servertest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if pid := helperPID(d.bin); pid != 0 {
				return fmt.Errorf("helper %d still runs", pid)
			}
			if out, err := xdotool(X, "search", "--name", consent.Title); err == nil {
				return fmt.Errorf("a prompt still shows: %s", out)
			}
			return nil
		})
	}
	// press answers the prompt with keys, again while it still shows (a
	// window the server has not mapped yet, or has only just mapped, may
	// miss a press).
	press := func(t *testing.T, keys string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if _, err := xdotool(X, "search", "--name", consent.Title); err != nil {
				return // answered: the prompt is gone
			}
			out, _ := xdotool(X, "search", "--onlyvisible", "--name", consent.Title)
			for _, w := range strings.Fields(out) {
				xdotool(X, "windowfocus", "--sync", w, "key", "--clearmodifiers", keys)
			}
		}
		t.Fatalf("the prompt did not take %s", keys)
	}

	page := startTray(t, consoleUID, d.socket, d.xs.display, d.xs.auth)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(900, 700))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelB(); cancelAlloc() })
	// The browser starts with the long-lived context: one started under
	// a call's timeout would close with it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	browse := func(t *testing.T, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, timeout)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("tray page: %v", err)
		}
	}
	browse(t, 30*time.Second, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid=conn].ok`)))

	t.Run("deny", func(t *testing.T) {
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		_, cmdline, pid := promptWindow(t, X, 30*time.Second)
		if !strings.Contains(cmdline, "admin (tier 3) wants to view your screen") {
			t.Errorf("prompt %q", cmdline)
		}
		if uid := strings.Fields(procField(pid, "Uid") + " ?")[0]; uid != strconv.Itoa(consoleUID) {
			t.Errorf("the prompt runs as uid %s, want the console user's %d", uid, consoleUID)
		}
		press(t, "Escape")
		waitEnded(t, v, session.ReasonDenied)
		if n := v.Offers.Load(); n != 0 {
			t.Errorf("%d offer(s) after a denial", n)
		}
		v.Close()
		idle()
	})

	t.Run("timeout", func(t *testing.T) {
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		promptWindow(t, X, 30*time.Second)
		waitEnded(t, v, session.ReasonNoAnswer)
		if n := v.Offers.Load(); n != 0 {
			t.Errorf("%d offer(s) without an answer", n)
		}
		v.Close()
		idle()
	})

	t.Run("view allowed, control asks again", func(t *testing.T) {
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		promptWindow(t, X, 30*time.Second)
		press(t, "alt+a")
		v.frame(30 * time.Second)
		v.Close() // the console's Take control starts a control session
		idle()
		v, err = openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, cmdline, _ := promptWindow(t, X, 30*time.Second)
		if !strings.Contains(cmdline, "admin (tier 3) wants to control your screen") {
			t.Errorf("the control session's prompt %q", cmdline)
		}
		if n := v.Offers.Load(); n != 0 {
			t.Errorf("%d offer(s) before the user allowed control", n)
		}
		press(t, "Escape")
		waitEnded(t, v, session.ReasonDenied)
		v.Close()
		idle()
	})

	t.Run("allow, then end from the tray page", func(t *testing.T) {
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		promptWindow(t, X, 30*time.Second)
		press(t, "alt+a")
		if f := v.frame(30 * time.Second); f.Width != 800 || f.Height != 600 {
			t.Fatalf("frame %dx%d, want the user's 800x600", f.Width, f.Height)
		}
		browse(t, 15*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=session]`)))
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('session-text').textContent`))
		cancel()
		if err != nil || text != "admin is controlling your screen" {
			t.Errorf("the tray page says %q (%v)", text, err)
		}
		pid := helperPID(d.bin)
		if pid == 0 {
			t.Fatal("no desktop helper process")
		}
		clicked := time.Now()
		browse(t, 10*time.Second, chromedp.Click(chromedp.CSS(`[data-testid=end-session]`)))
		// The capture runs in the helper: it stops when the helper is gone.
		servertest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("helper %d still runs", pid)
			}
			return nil
		})
		stopped := time.Since(clicked)
		t.Logf("End session on the tray page → capture stopped (the helper gone): %v", stopped)
		if stopped > time.Second {
			t.Errorf("the capture stopped %v after End session, want within 1 s", stopped)
		}
		waitEnded(t, v, traysvc.EndedByUser)
		browse(t, 10*time.Second, chromedp.WaitNotVisible(chromedp.CSS(`[data-testid=session]`)))
		v.Close()
		idle()
	})

	t.Run("unattended shows the indicator", func(t *testing.T) {
		setMode(desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED)
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		v.frame(30 * time.Second)
		noPrompt(t, X)
		browse(t, 15*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=session]`)))
		servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			out, err := xdotool(X, "search", "--name", "^Deskside: admin is viewing your screen")
			if err != nil || strings.TrimSpace(out) == "" {
				return fmt.Errorf("no banner on the user's screen: %v", err)
			}
			return nil
		})
		v.Close()
		browse(t, 15*time.Second, chromedp.WaitNotVisible(chromedp.CSS(`[data-testid=session]`)))
		idle()
	})

	t.Run("no logind session: the display the tray registered", func(t *testing.T) {
		// logind knows no session now: the service serves the one the
		// user's tray registered over IPC.
		if err := os.Remove(d.record); err != nil {
			t.Fatal(err)
		}
		v, err := openViewerWith(t, d.cs, d.ctx, d.device, viewerOptions{viewOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if f := v.frame(30 * time.Second); f.Width != 800 || f.Height != 600 {
			t.Fatalf("frame %dx%d, want the user's 800x600", f.Width, f.Height)
		}
		v.Close()
		idle()
	})
}
