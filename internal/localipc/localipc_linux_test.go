package localipc_test

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// dialEnv makes the test binary a client: it dials the socket the
// variable names, sends a hello, waits for one frame and exits 0 if it
// got one, 3 if the service closed the connection.
const dialEnv = "LOCALIPC_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialEnv); path != "" {
		c, err := localipc.Dial(path)
		if err != nil {
			os.Exit(2)
		}
		_ = c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_HelperHello{HelperHello: &desksidev1.HelperHello{Display: ":1"}}})
		var m desksidev1.LocalMessage
		if err := c.Recv(&m); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFramesRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := localipc.NewConn(a, localipc.Cred{}, 0), localipc.NewConn(b, localipc.Cred{}, 0)
	defer ca.Close()
	defer cb.Close()
	go func() {
		for i := range 3 {
			_ = ca.Send(&desksidev1.LocalMessage{Id: uint64(i + 1), Body: &desksidev1.LocalMessage_DesktopSignal{DesktopSignal: &desksidev1.DesktopSignal{SessionId: "s", Signal: &desksidev1.DesktopSignal_Offer{Offer: strings.Repeat("v", i*1000)}}}})
		}
	}()
	for i := range 3 {
		var m desksidev1.LocalMessage
		if err := cb.Recv(&m); err != nil {
			t.Fatal(err)
		}
		if m.GetId() != uint64(i+1) || len(m.GetDesktopSignal().GetOffer()) != i*1000 {
			t.Fatalf("frame %d: got id %d, %d bytes of SDP", i, m.GetId(), len(m.GetDesktopSignal().GetOffer()))
		}
	}
}

func TestFrameCap(t *testing.T) {
	a, b := net.Pipe()
	small := localipc.NewConn(a, localipc.Cred{}, 100)
	big := localipc.NewConn(b, localipc.Cred{UID: 1000, PID: 42}, 0)
	defer small.Close()
	defer big.Close()
	huge := &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_DesktopSignal{DesktopSignal: &desksidev1.DesktopSignal{Signal: &desksidev1.DesktopSignal_Offer{Offer: strings.Repeat("x", 500)}}}}
	if err := small.Send(huge); !errors.Is(err, localipc.ErrFrameTooLarge) {
		t.Fatalf("sending over the cap: %v", err)
	}
	go func() { _ = big.Send(huge) }()
	err := small.Recv(&desksidev1.LocalMessage{})
	if !errors.Is(err, localipc.ErrFrameTooLarge) || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("receiving over the cap: %v", err)
	}
}

func TestCloseIsEOF(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := localipc.NewConn(a, localipc.Cred{}, 0), localipc.NewConn(b, localipc.Cred{}, 0)
	ca.Close()
	if err := cb.Recv(&desksidev1.LocalMessage{}); !errors.Is(err, io.EOF) {
		t.Fatalf("after the peer closed: %v", err)
	}
}

func TestRootOr(t *testing.T) {
	check := localipc.RootOr(1000)
	for _, c := range []struct {
		uid uint32
		ok  bool
	}{{0, true}, {1000, true}, {1001, false}, {65534, false}} {
		err := check(localipc.Cred{UID: c.uid})
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, localipc.ErrRefused)) {
			t.Errorf("uid %d: %v", c.uid, err)
		}
	}
}

// TestPeerOfAnotherUIDIsRefused runs the test binary as two other uids
// against a socket that lets one of them in: SO_PEERCRED names each, the
// expected one gets an answer, the other is closed before a frame is read.
func TestPeerOfAnotherUIDIsRefused(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the test runs clients as other uids", "run the test as root (CI does)")
	const allowed, other = 65534, 65533
	dir := openDir(t)
	exe := copyExecutable(t, dir)
	l, err := localipc.Listen(filepath.Join(dir, "run", "agent.sock"), localipc.RootOr(allowed))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	accepted := make(chan localipc.Cred, 4)
	refused := make(chan error, 4)
	go func() {
		for {
			c, err := l.Accept()
			if errors.Is(err, localipc.ErrRefused) {
				refused <- err
				continue
			}
			if err != nil {
				return
			}
			var m desksidev1.LocalMessage
			if err := c.Recv(&m); err == nil {
				_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: "hello"}}})
			}
			accepted <- c.Peer()
			c.Close()
		}
	}()

	run := func(uid uint32) int {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = []string{dialEnv + "=" + l.Path()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run the client as uid %d: %v %s", uid, err, out)
		}
		return cmd.ProcessState.ExitCode()
	}

	if code := run(allowed); code != 0 {
		t.Fatalf("the allowed uid's client exited %d, want an answer (0)", code)
	}
	select {
	case c := <-accepted:
		if c.UID != allowed || c.PID <= 0 {
			t.Fatalf("accepted peer %v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the allowed client was not accepted")
	}
	if code := run(other); code != 3 {
		t.Fatalf("another uid's client exited %d, want 3 (closed without an answer)", code)
	}
	select {
	case err := <-refused:
		if !strings.Contains(err.Error(), "uid 65533") || !strings.Contains(err.Error(), "only root or uid 65534") {
			t.Fatalf("refusal: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other uid's connection was not refused")
	}
	select {
	case c := <-accepted:
		t.Fatalf("a connection of uid %d was served", c.UID)
	default:
	}
	// A second agent does not take over a live socket.
	if _, err := localipc.Listen(l.Path(), localipc.RootOr(allowed)); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Fatalf("a second listener on a live socket: %v", err)
	}
}

// copyExecutable copies the test binary into dir, where other uids can run
// it (the go tool builds it in a directory only the caller may enter).
func copyExecutable(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// openDir is a temporary directory other uids may enter (t.TempDir's
// parent is the caller's alone).
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localipc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
