package usersession_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/usersession"
	"github.com/deskside/deskside/internal/localipc"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// clientEnv makes the test binary a client of the runner's socket:
// "register" registers display :42 and stays until its stdin closes,
// "hello" poses as a desktop helper the runner did not launch.
const clientEnv = "USERSESSION_TEST_CLIENT"

func TestMain(m *testing.M) {
	if what := os.Getenv(clientEnv); what != "" {
		os.Exit(client(what))
	}
	os.Exit(m.Run())
}

func client(what string) int {
	if what == "helper" || what == "stubborn-helper" {
		return fakeHelper(what == "stubborn-helper")
	}
	c, err := localipc.Dial(os.Getenv("USERSESSION_TEST_SOCKET"))
	if err != nil {
		return 2
	}
	defer c.Close()
	switch what {
	case "register":
		if c.Send(&desksidev1.LocalMessage{Id: 1, Body: &desksidev1.LocalMessage_RegisterSession{RegisterSession: &desksidev1.RegisterSession{Display: ":42", Xauthority: "/tmp/xauth-42"}}}) != nil {
			return 2
		}
		var m desksidev1.LocalMessage
		if c.Recv(&m) != nil || m.GetSignalAck() == nil {
			return 3
		}
		os.Stdout.WriteString("registered\n")
		io.Copy(io.Discard, os.Stdin)
	case "hello":
		_ = c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_HelperHello{HelperHello: &desksidev1.HelperHello{Display: ":1"}}})
		var m desksidev1.LocalMessage
		if err := c.Recv(&m); err != nil {
			return 3 // closed without a word
		}
	}
	return 0
}

// copyClient copies the test binary into dir, where other uids can run
// it, once.
func copyClient(t *testing.T, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "client")
	if _, err := os.Stat(exe); err == nil {
		return exe
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// clientAs runs the test binary as uid, a client of socket.
func clientAs(t *testing.T, dir, socket string, uid uint32, what string) *exec.Cmd {
	t.Helper()
	exe := copyClient(t, dir)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{clientEnv + "=" + what, "USERSESSION_TEST_SOCKET=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return cmd
}

// TestSessionRegisteredOverIPC: with no logind session, a process of the
// user registers its display over the socket (as the tray will); the
// runner serves that user's session while the connection is open, and
// no longer once it closed. A process posing as a helper the runner did
// not launch is closed without an answer.
func TestSessionRegisteredOverIPC(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the test runs clients as another uid", "run the test as root (CI does)")
	dir, err := os.MkdirTemp("", "usersession-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	socket := filepath.Join(dir, "run", "agent.sock")
	f := &usersession.Finder{SessionsDir: filepath.Join(dir, "no-logind"), Loginctl: "/bin/false"}
	r, err := usersession.NewRunner(usersession.Config{Socket: socket, Exe: "/bin/false", Finder: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// Nobody registered: the console's clear reason.
	if reason := r.Run(context.Background(), &desksidev1.StartDesktop{SessionId: "s1"}, nil); reason != "no user is logged in at the console" {
		t.Fatalf("reason with no session: %q", reason)
	}

	reg := clientAs(t, dir, socket, 65534, "register")
	stdin, _ := reg.StdinPipe()
	stdout, _ := reg.StdoutPipe()
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("registered\n"))
	if _, err := io.ReadFull(stdout, line); err != nil {
		t.Fatalf("the registering client: %v", err)
	}
	s, err := f.Find(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.User != "nobody" || s.UID != 65534 || s.Display != ":42" || s.XAuthority != "/tmp/xauth-42" || !strings.HasPrefix(s.ID, "ipc:") {
		t.Fatalf("registered session %+v", s)
	}
	stdin.Close()
	reg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := f.Find(context.Background())
		if errors.Is(err, usersession.ErrNoSession) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registration outlived its connection: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A helper the runner did not launch is refused.
	fake := clientAs(t, dir, socket, 65534, "hello")
	err = fake.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("a helper the runner did not launch: %v", err)
	}
}

// fakeHelper speaks the helper's side of the protocol without a desktop:
// hello, an offer for the session, an ack for each signal (an error for
// an answer "bad"), and DesktopEnded when asked to end — unless stubborn,
// when it ignores EndDesktop.
func fakeHelper(stubborn bool) int {
	socket := ""
	for i, a := range os.Args {
		if a == "--socket" && i+1 < len(os.Args) {
			socket = os.Args[i+1]
		}
	}
	c, err := localipc.Dial(socket)
	if err != nil {
		return 2
	}
	defer c.Close()
	if c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_HelperHello{HelperHello: &desksidev1.HelperHello{Display: os.Getenv("DISPLAY")}}}) != nil {
		return 2
	}
	for {
		var m desksidev1.LocalMessage
		if c.Recv(&m) != nil {
			return 0
		}
		switch b := m.GetBody().(type) {
		case *desksidev1.LocalMessage_StartDesktop:
			c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_DesktopSignal{DesktopSignal: &desksidev1.DesktopSignal{SessionId: b.StartDesktop.GetSessionId(), Signal: &desksidev1.DesktopSignal_Offer{Offer: "offer from " + os.Getenv("DISPLAY")}}}})
		case *desksidev1.LocalMessage_DesktopSignal:
			ans := &desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}}
			if b.DesktopSignal.GetAnswer() == "bad" {
				ans.Body = &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: "session: the answer is bad"}}
			}
			c.Send(ans)
		case *desksidev1.LocalMessage_EndDesktop:
			if !stubborn {
				c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{SessionId: b.EndDesktop.GetSessionId(), Reason: "ended: " + b.EndDesktop.GetReason()}}})
				return 0
			}
		}
	}
}

// TestRunnerProxiesToTheHelper drives the runner against a helper that
// speaks the protocol without a desktop, launched as nobody (reported as
// the session's owner, usersession.WithOwner): the offer
// comes back as a signal, Signal gets the helper's ack or error, End
// reaches it and its end reason is the session's; a helper that ignores
// the agent stopping the session is cut off.
func TestRunnerProxiesToTheHelper(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the runner launches its helper as another uid", "run the test as root (CI does)")
	dir, err := os.MkdirTemp("", "usersession-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	client := copyClient(t, dir)
	sessions := sessions(t, map[string]string{"5": "UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\nDISPLAY=:77\n"})
	for _, mode := range []string{"helper", "stubborn-helper"} {
		t.Run(mode, func(t *testing.T) {
			exe := filepath.Join(dir, mode)
			script := "#!/bin/sh\n" + clientEnv + "=" + mode + " exec " + client + " \"$@\"\n"
			if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := usersession.NewRunner(usersession.Config{Socket: filepath.Join(dir, mode+".sock"), Exe: exe, EndGrace: 500 * time.Millisecond,
				Finder: &usersession.Finder{SessionsDir: sessions, Proc: t.TempDir(), Loginctl: "/bin/false"}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			offers := make(chan string, 1)
			done := make(chan string, 1)
			owners := make(chan uint32, 2)
			octx := usersession.WithOwner(ctx, func(uid uint32) { owners <- uid })
			go func() {
				done <- r.Run(octx, &desksidev1.StartDesktop{SessionId: "s1"}, func(sig *desksidev1.DesktopSignal) error {
					offers <- sig.GetOffer()
					return nil
				})
			}()
			select {
			case o := <-offers:
				if o != "offer from :77" {
					t.Fatalf("offer %q", o)
				}
			case reason := <-done:
				t.Fatalf("the session ended before its offer: %s", reason)
			case <-time.After(15 * time.Second):
				t.Fatal("no offer from the helper")
			}
			// The trays of the console user only see the session.
			if len(owners) != 1 {
				t.Fatalf("%d owners reported, want the console user once", len(owners))
			}
			if uid := <-owners; uid != 65534 {
				t.Fatalf("owner uid %d reported, want the console user's 65534", uid)
			}
			if err := r.Signal(&desksidev1.DesktopSignal{SessionId: "s1", Signal: &desksidev1.DesktopSignal_Answer{Answer: "good"}}); err != nil {
				t.Fatalf("signal: %v", err)
			}
			if err := r.Signal(&desksidev1.DesktopSignal{SessionId: "s1", Signal: &desksidev1.DesktopSignal_Answer{Answer: "bad"}}); err == nil || err.Error() != "session: the answer is bad" {
				t.Fatalf("a signal the helper refused: %v", err)
			}
			if err := r.Signal(&desksidev1.DesktopSignal{SessionId: "other"}); err == nil {
				t.Fatal("a signal for no session was taken")
			}
			want := "ended: viewer left"
			if mode == "helper" {
				r.End("s1", "viewer left")
			} else {
				cancel()
				want = "the agent stopped the session"
			}
			select {
			case reason := <-done:
				if reason != want {
					t.Fatalf("end reason %q, want %q", reason, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the session did not end")
			}
		})
	}
}
