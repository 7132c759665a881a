package traysvc_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/tray"
	"github.com/deskside/deskside/agent/traysvc"
	"github.com/deskside/deskside/agent/usersession"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// roleEnv makes the test binary the real desktop helper
// (usersession.RunHelper, launched by the runner as the console user) or
// a tray answering consent questions on commands from its stdin.
const roleEnv = "TRAYSVC_TEST_ROLE"

// helper is `deskside-agent desktop-helper` in the test binary.
func helper() int {
	fs := flag.NewFlagSet("desktop-helper", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	timeout := fs.Duration("consent-timeout", 0, "")
	args := os.Args[1:]
	for len(args) > 0 && args[0] != "desktop-helper" {
		args = args[1:]
	}
	if len(args) == 0 || fs.Parse(args[1:]) != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := usersession.RunHelper(context.Background(), *socket, log, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// consentTray is a tray of the socket at path that prints, on each
// command of its stdin, one line: "next" → "question ID TEXT" (the next
// new open question), "answer ID allow|deny" → "answered" or "refused
// ERR", "closed ID" → "closed REASON".
func consentTray(path string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := tray.DialAgentAt(ctx, path, nil)
	wait := func(ok func(tray.ConsentState) bool) (tray.ConsentState, bool) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if st := a.Consent(); ok(st) {
				return st, true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return tray.ConsentState{}, false
	}
	// The service has no link: its answer (not ErrAgentUnreachable) says
	// the tray reaches it.
	reached := func(tray.ConsentState) bool { _, err := a.MyRequests(ctx); return err != tray.ErrAgentUnreachable }
	if _, ok := wait(reached); !ok {
		fmt.Println("never connected")
		return 2
	}
	fmt.Println("connected")
	var last uint64
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "next":
			st, ok := wait(func(st tray.ConsentState) bool { return st.Open.ID != 0 && st.Open.ID != last })
			if !ok {
				fmt.Println("no question")
				continue
			}
			last = st.Open.ID
			fmt.Printf("question %d %s\n", st.Open.ID, st.Open.Text)
		case len(f) == 3 && f[0] == "answer":
			id, _ := strconv.ParseUint(f[1], 10, 64)
			if err := a.AnswerConsent(ctx, id, f[2] == "allow"); err != nil {
				fmt.Println("refused", err)
			} else {
				fmt.Println("answered")
			}
		case len(f) == 2 && f[0] == "closed":
			id, _ := strconv.ParseUint(f[1], 10, 64)
			if st, ok := wait(func(st tray.ConsentState) bool { return st.ClosedID == id }); ok {
				fmt.Println("closed", st.ClosedReason)
			} else {
				fmt.Println("not closed")
			}
		default:
			fmt.Println("bad command")
		}
	}
	return 0
}

// TestConsentOnTheOwnersTray runs the agent service's socket (the runner,
// routing trays to traysvc) and the real desktop helper the runner
// launches as the console user, nobody, on a display nobody serves, so
// the dialog cannot ask and the helper asks through the service. Root's
// tray is connected throughout and never sees nor answers nobody's
// question; nobody's tray gets it and its answer is the session's: deny,
// allow, no answer within the timeout, and the session's end closes it.
// Without nobody's tray the session ends saying how the user can be
// asked.
func TestConsentOnTheOwnersTray(t *testing.T) {
	testkit.NeedOK(t, "root", os.Geteuid() == 0, "the runner launches its helper and a tray as another uid", "run the test as root (CI does)")
	testkit.Heavy(t, "runs the desktop helper and trays as processes")
	dir, client := clientDir(t)
	exe := filepath.Join(dir, "deskside-agent")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"+roleEnv+"=helper exec "+client+" -test.run=^$ \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sessions := t.TempDir()
	if err := os.WriteFile(filepath.Join(sessions, "5"), []byte("UID=65534\nUSER=nobody\nACTIVE=1\nTYPE=x11\nCLASS=user\nSTATE=active\nSEAT=seat0\nDISPLAY=:5986\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	svc := &traysvc.Service{Logger: servertest.DiscardLogger()}
	helperLog, err := os.CreateTemp(dir, "helper-log-")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 6 * time.Second
	socket := filepath.Join(dir, "run", "agent.sock")
	runner, err := usersession.NewRunner(usersession.Config{Socket: socket, Exe: exe, Serve: svc.Serve, AskTray: svc.AskConsent,
		ConsentTimeout: timeout, HelperStderr: helperLog, Logger: servertest.DiscardLogger(),
		Finder: &usersession.Finder{SessionsDir: sessions, Proc: t.TempDir(), Loginctl: "/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		svc.Close() // the trays' connections: the runner waits for them
		runner.Close()
	}()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(helperLog.Name())
			t.Logf("the helpers' log:\n%s", b)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, _ := tray.DialAgentAt(ctx, socket, servertest.DiscardLogger())
	servertest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if _, err := root.MyRequests(ctx); err == tray.ErrAgentUnreachable {
			return err
		}
		return nil
	})

	type result struct {
		reason  string
		answers []desksidev1.DesktopConsent_Answer
	}
	start := func(id string) (<-chan result, func()) {
		done := make(chan result, 1)
		sctx, end := context.WithCancel(ctx)
		go func() {
			var mu sync.Mutex
			var answers []desksidev1.DesktopConsent_Answer
			reason := runner.Run(sctx, &desksidev1.StartDesktop{SessionId: id, TechnicianName: "dana", TechnicianTier: 2, TicketCode: "DS-7K3Q",
				Control: true, PolicyMode: desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED}, func(sig *desksidev1.DesktopSignal) error {
				if c := sig.GetConsent(); c != nil {
					mu.Lock()
					answers = append(answers, c.GetAnswer())
					mu.Unlock()
				}
				return nil
			})
			mu.Lock()
			done <- result{reason, answers}
			mu.Unlock()
		}()
		return done, end
	}
	wait := func(done <-chan result) result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("the session did not end within 60 s")
		}
		return result{}
	}
	rootSeesNothing := func() {
		t.Helper()
		if st := root.Consent(); st.Open.ID != 0 || st.ClosedID != 0 {
			t.Fatalf("root's tray saw nobody's question: %+v", st)
		}
	}

	t.Log("no tray of nobody's: the session ends saying how to ask the user")
	done, _ := start("s1")
	r := wait(done)
	if !strings.Contains(r.reason, "the device's policy requires the user's consent, but") ||
		!strings.Contains(r.reason, "start deskside-tray in the user's session") || len(r.answers) != 0 {
		t.Fatalf("no tray: %+v", r)
	}
	rootSeesNothing()

	t.Log("nobody's tray connects")
	stdin, line := startAs(t, client, 65534, roleEnv+"=consent-tray", clientEnv+"="+socket)
	ask := func(command string) string {
		t.Helper()
		if command != "" {
			fmt.Fprintln(stdin, command)
		}
		return line()
	}
	if l := ask(""); l != "connected" {
		t.Fatalf("nobody's tray: %q", l)
	}
	question := func() string {
		t.Helper()
		l := ask("next")
		rest, ok := strings.CutPrefix(l, "question ")
		id, text, _ := strings.Cut(rest, " ")
		if !ok || text != "dana (tier 2) wants to control your screen for ticket DS-7K3Q." {
			t.Fatalf("nobody's tray: %q", l)
		}
		return id
	}

	t.Log("deny: only nobody's tray has the question; root's answer is refused; nobody's denies")
	done, _ = start("s2")
	id := question()
	rootSeesNothing()
	n, _ := strconv.ParseUint(id, 10, 64)
	if err := root.AnswerConsent(ctx, n, true); err == nil || !strings.Contains(err.Error(), "no longer open") {
		t.Fatalf("root answered nobody's question: %v", err)
	}
	if l := ask("answer " + id + " deny"); l != "answered" {
		t.Fatalf("nobody's deny: %q", l)
	}
	if l := ask("closed " + id); l != "closed "+traysvc.ClosedDenied {
		t.Fatalf("after the deny: %q", l)
	}
	if l := ask("answer " + id + " allow"); !strings.HasPrefix(l, "refused") {
		t.Fatalf("a second answer: %q", l)
	}
	r = wait(done)
	if r.reason != "denied by the user" || len(r.answers) != 1 || r.answers[0] != desksidev1.DesktopConsent_ANSWER_DENIED {
		t.Fatalf("denied: %+v", r)
	}
	rootSeesNothing()

	t.Log("allow: the session goes on (and fails on the display nobody serves)")
	done, _ = start("s3")
	id = question()
	if l := ask("answer " + id + " allow"); l != "answered" {
		t.Fatalf("nobody's allow: %q", l)
	}
	r = wait(done)
	if len(r.answers) != 1 || r.answers[0] != desksidev1.DesktopConsent_ANSWER_ALLOWED || strings.Contains(r.reason, "denied") {
		t.Fatalf("allowed: %+v", r)
	}
	if l := ask("closed " + id); l != "closed "+traysvc.ClosedAllowed {
		t.Fatalf("after the allow: %q", l)
	}

	t.Log("no answer within the timeout: no answer")
	asked := time.Now()
	done, _ = start("s4")
	id = question()
	r = wait(done)
	if r.reason != "no answer: the user did not answer the consent prompt in time" || len(r.answers) != 1 ||
		r.answers[0] != desksidev1.DesktopConsent_ANSWER_NO_ANSWER || time.Since(asked) < timeout {
		t.Fatalf("no answer: %+v after %v", r, time.Since(asked))
	}
	if l := ask("closed " + id); l != "closed "+traysvc.ClosedNoAnswer {
		t.Fatalf("after the timeout: %q", l)
	}

	t.Log("the session's end closes the question")
	done, _ = start("s5")
	id = question()
	runner.End("s5", "the viewer left")
	if l := ask("closed " + id); l != "closed "+traysvc.ClosedEnded {
		t.Fatalf("after the end: %q", l)
	}
	r = wait(done)
	if len(r.answers) != 0 {
		t.Fatalf("ended: %+v", r)
	}
	if l := ask("answer " + id + " allow"); !strings.HasPrefix(l, "refused") {
		t.Fatalf("an answer after the end: %q", l)
	}
	rootSeesNothing()
}
