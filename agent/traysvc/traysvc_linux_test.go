package traysvc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/agent/usersession"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// clientEnv makes the test binary a tray client of the socket it names
// (run as another uid): it prints what that user can see, one line each,
// and the pushes it got once its stdin closes.
const clientEnv = "TRAYSVC_TEST_CLIENT"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "helper":
		os.Exit(helper())
	case "consent-tray":
		os.Exit(consentTray(os.Getenv(clientEnv)))
	}
	if path := os.Getenv(clientEnv); path != "" {
		os.Exit(client(path, os.Getenv("TRAYSVC_TEST_CODE")))
	}
	os.Exit(m.Run())
}

func client(path, othersCode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, _ := tray.DialAgentAt(ctx, path, nil)
	for !a.Connected() {
		if ctx.Err() != nil {
			fmt.Println("never connected")
			return 2
		}
		time.Sleep(20 * time.Millisecond)
	}
	reqs, err := a.MyRequests(ctx)
	fmt.Printf("requests %d %v\n", len(reqs), err)
	if _, err := a.Reply(ctx, othersCode, "let me in", false); err != nil {
		fmt.Println("reply-refused", err)
	} else {
		fmt.Println("reply-accepted")
	}
	f, err := a.FileHelp(ctx, &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "root"}, Description: "My mail does not sync."})
	if err != nil {
		fmt.Println("file-failed", err)
		return 1
	}
	fmt.Println("filed", f.GetCode())
	stdin := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	var got []string
	for {
		select {
		case u := <-a.Updates():
			got = append(got, u.GetLogin()+":"+u.GetRequest().GetCode())
			continue
		case <-stdin:
		}
		break
	}
	fmt.Println("pushes", strings.Join(got, ","))
	// Another user's remote session runs by now: this tray sees none and
	// cannot end it.
	time.Sleep(500 * time.Millisecond)
	fmt.Printf("session %+v\n", a.SessionState())
	fmt.Println("end", a.EndSession(ctx))
	return 0
}

// clientDir is a directory every uid can enter, removed after t, holding
// a copy of the test binary they can run.
func clientDir(t *testing.T) (dir, exe string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "traysvc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "client")
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

// startAs runs the test binary exe as uid with env (it is killed after
// t) and returns its stdin and a function reading its next line of
// output, which fails t when it exits or says nothing for 40 s.
func startAs(t *testing.T, exe string, uid uint32, env ...string) (io.WriteCloser, func() string) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return stdin, func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the client as uid %d exited", uid)
			}
			return l
		case <-time.After(40 * time.Second):
			t.Fatalf("the client as uid %d said nothing for 40 s", uid)
		}
		return ""
	}
}

// TestTrayOverIPC runs a real relay, a real agent link, the agent
// service's socket server (usersession.Runner routing to traysvc) and the
// tray's IPC client, as root and as nobody: each user's identity is the
// peer uid, whatever the messages say; each sees only their own requests
// and pushes.
func TestTrayOverIPC(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the test runs a tray client as another uid", "run the test as root (CI does)")
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "shared-pc")
	svc := &traysvc.Service{Logger: servertest.DiscardLogger()}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(nil), Health: health.NewSampler(nil, health.Options{}), HealthInterval: 200 * time.Millisecond,
		Hostname: "shared-pc", OnHelpUpdate: svc.Push,
	})
	svc.SetLink(a.Link)

	dir, exe := clientDir(t)
	socket := filepath.Join(dir, "run", "agent.sock")
	runner, err := usersession.NewRunner(usersession.Config{Socket: socket, Logger: servertest.DiscardLogger(), Serve: svc.Serve})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { runner.Close() }() // the second one, at the end

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := tray.DialAgentAt(ctx, socket, servertest.DiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !root.Connected() {
			return fmt.Errorf("the tray does not see the agent connected")
		}
		return nil
	})

	_, cctx := r.Admin(t)
	tickets := desksidev1.NewTicketServiceClient(r.Dial(t))
	wctx, stopWatch := context.WithCancel(cctx)
	defer stopWatch()
	watch, err := tickets.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	created := make(chan *desksidev1.Ticket, 4)
	go func() {
		for {
			ev, err := watch.Recv()
			if err != nil {
				return
			}
			if ev.GetKind() == desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED {
				created <- ev.GetTicket()
			}
		}
	}()
	queued := func() *desksidev1.Ticket {
		t.Helper()
		select {
		case tk := <-created:
			return tk
		case <-time.After(5 * time.Second):
			t.Fatal("no ticket in the queue within 5 s")
			return nil
		}
	}

	t.Log("root files a request naming another login: it is root's")
	sent := time.Now()
	f, err := root.FileHelp(ctx, &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "nobody", Email: "root@example.com"}, Description: "The printer is offline."})
	if err != nil {
		t.Fatal(err)
	}
	tk := queued()
	t.Logf("filed over the tray's IPC → ticket in the queue: %v", time.Since(sent).Round(100*time.Microsecond))
	if tk.GetCode() != f.GetCode() {
		t.Fatalf("queued %s, filed %s", tk.GetCode(), f.GetCode())
	}
	full, err := tickets.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: f.GetCode()})
	if err != nil {
		t.Fatal(err)
	}
	if g := full.GetTicket(); g.GetCreatedBy() != "requester <root>" || g.GetRequester().GetDeviceId() != st.DeviceID || g.GetRequester().GetEmail() != "root@example.com" {
		t.Fatalf("ticket: created by %q, requester %v", g.GetCreatedBy(), g.GetRequester())
	}

	t.Log("nobody's tray: its own (empty) list, no reply on root's request, its own request")
	stdin, line := startAs(t, exe, 65534, clientEnv+"="+socket, "TRAYSVC_TEST_CODE="+f.GetCode())
	if l := line(); l != "requests 0 <nil>" {
		t.Fatalf("nobody's My requests: %q", l)
	}
	if l := line(); !strings.HasPrefix(l, "reply-refused") {
		t.Fatalf("nobody replied on root's request: %q", l)
	}
	l := line()
	nobodyCode, ok := strings.CutPrefix(l, "filed ")
	if !ok {
		t.Fatalf("nobody's request: %q", l)
	}
	if tk := queued(); tk.GetCode() != nobodyCode {
		t.Fatalf("queued %s, nobody filed %s", tk.GetCode(), nobodyCode)
	}
	if g, err := tickets.GetTicket(cctx, &desksidev1.GetTicketRequest{Code: nobodyCode}); err != nil || g.GetTicket().GetCreatedBy() != "requester <nobody>" {
		t.Fatalf("nobody's ticket: %v %v", g.GetTicket(), err)
	}
	mine, err := root.MyRequests(ctx)
	if err != nil || len(mine) != 1 || mine[0].GetCode() != f.GetCode() {
		t.Fatalf("root's My requests: %v %v", mine, err)
	}

	t.Log("a technician answers both: each push reaches its own user's tray only")
	for _, code := range []string{f.GetCode(), nobodyCode} {
		if _, err := tickets.ReplyTicket(cctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "On it."}); err != nil {
			t.Fatal(err)
		}
	}
	var rootGot []string
	deadline := time.After(10 * time.Second)
	for len(rootGot) == 0 {
		select {
		case u := <-root.Updates():
			rootGot = append(rootGot, u.GetLogin()+":"+u.GetRequest().GetCode())
		case <-deadline:
			t.Fatal("no push for root's request within 10 s")
		}
	}
	time.Sleep(time.Second) // any stray push has had time to arrive
	for len(root.Updates()) > 0 {
		u := <-root.Updates()
		rootGot = append(rootGot, u.GetLogin()+":"+u.GetRequest().GetCode())
	}
	for _, g := range rootGot {
		if g != "root:"+f.GetCode() {
			t.Fatalf("root's tray got %v", rootGot)
		}
	}
	t.Log("root's remote session runs: root's tray sees it, nobody's neither sees nor ends it")
	if err := root.EndSession(ctx); err != tray.ErrNoSession {
		t.Fatalf("ending no session: %v", err)
	}
	ended := make(chan struct{})
	svc.SetSession(0, true, "Dana (tier 2)", true, func(context.Context) error {
		close(ended)
		svc.SetSession(traysvc.NoOwner, false, "", false, nil)
		return nil
	})
	select {
	case <-root.SessionChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("no change of state within 5 s")
	}
	servertest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := root.SessionState(); s != (tray.SessionState{Active: true, Technician: "Dana (tier 2)", Control: true}) {
			return fmt.Errorf("state %+v", s)
		}
		return nil
	})
	stdin.Close()
	l = line()
	got, _ := strings.CutPrefix(l, "pushes ")
	if got == "" {
		t.Fatalf("nobody's tray got no push: %q", l)
	}
	for _, g := range strings.Split(got, ",") {
		if g != "nobody:"+nobodyCode {
			t.Fatalf("nobody's tray got %q", got)
		}
	}

	if l := line(); l != fmt.Sprintf("session %+v", tray.SessionState{}) {
		t.Fatalf("nobody's tray during root's session: %q", l)
	}
	if l := line(); l != "end "+tray.ErrNoSession.Error() {
		t.Fatalf("nobody's End session during root's session: %q", l)
	}
	select {
	case <-ended:
		t.Fatal("nobody's tray ended root's session")
	default:
	}

	t.Log("a frame over the cap is refused with a clear error; the connection stays usable")
	if _, err := root.FileHelp(ctx, &desksidev1.FileHelpRequest{Description: "big", ScreenshotPng: make([]byte, 4<<20)}); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a 4 MiB screenshot: %v", err)
	}
	if _, err := root.MyRequests(ctx); err != nil {
		t.Fatal(err)
	}

	t.Log("root ends the session from its tray")
	if err := root.EndSession(ctx); err != nil {
		t.Fatal(err)
	}
	<-ended
	servertest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if root.SessionState().Active {
			return fmt.Errorf("the session still shows")
		}
		return nil
	})

	t.Log("the agent service going away: the tray says so, then reconnects")
	svc.Close()
	runner.Close()
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if root.Connected() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	if _, err := root.MyRequests(ctx); err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("a call without the service: %v", err)
	}
	svc = &traysvc.Service{Logger: servertest.DiscardLogger()}
	svc.SetLink(a.Link)
	runner, err = usersession.NewRunner(usersession.Config{Socket: socket, Logger: servertest.DiscardLogger(), Serve: svc.Serve})
	if err != nil {
		t.Fatal(err)
	}
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !root.Connected() {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
	if mine, err := root.MyRequests(ctx); err != nil || len(mine) != 1 {
		t.Fatalf("after the reconnection: %v %v", mine, err)
	}
}
