package action

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/proctab"
	"github.com/deskside/deskside/agent/proctab/proctabtest"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

var (
	errExit     = errors.New("exit status 1")
	errNotFound = &exec.Error{Name: "tool", Err: exec.ErrNotFound}
)

// startChild starts script under sh, reads the pids it announces with
// "pid N" lines up to a "ready" line, and returns the shell and those pids.
// A goroutine reaps the shell; the channel yields its Wait error once.
func startChild(t *testing.T, script string) (*exec.Cmd, []proctab.Proc, <-chan error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var kids []proctab.Proc
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			break
		}
		if n, ok := strings.CutPrefix(line, "pid "); ok {
			pid, _ := strconv.Atoi(n)
			p, err := proctab.Read(pid)
			if err != nil {
				t.Fatalf("child %d: %v", pid, err)
			}
			kids = append(kids, p)
		}
	}
	waited := make(chan error, 1)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for _, k := range kids {
			if h, err := proctab.Open(k); err == nil {
				_ = h.Signal(syscall.SIGKILL)
				h.Release()
			}
		}
		<-reaped
	})
	return cmd, kids, waited
}

// gone fails unless p is gone or a zombie.
func gone(p proctab.Proc) error {
	cur, err := proctab.Read(p.PID)
	if err == nil && cur.Start == p.Start && !cur.Zombie {
		return fmt.Errorf("process %d still runs", p.PID)
	}
	return nil
}

func TestKillProcess(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		kids     int
		want     string
		signaled syscall.Signal
	}{
		{"sleep", "echo ready; exec sleep 300", 0, "ended after SIGTERM", syscall.SIGTERM},
		{"ignores SIGTERM", `trap "" TERM; sleep 300 & echo pid $!; echo ready; wait`, 1, "did not exit within 300ms of SIGTERM and was killed with SIGKILL; 1 child process(es) ended too (1 needed SIGKILL)", syscall.SIGKILL},
		{"with children", "sleep 300 & echo pid $!; sleep 300 & echo pid $!; echo ready; wait", 2, "ended after SIGTERM; 2 child process(es) ended too (0 needed SIGKILL)", syscall.SIGTERM},
		{"with a grandchild", "sh -c 'sleep 300 & echo pid $!; wait' & echo pid $!; sleep 0.1; echo ready; wait", 2, "ended after SIGTERM; 2 child process(es) ended too", syscall.SIGTERM},
	}
	r := newTestRunner(SystemExec{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, kids, waited := startChild(t, tt.script)
			if len(kids) != tt.kids {
				t.Fatalf("%d children announced, want %d", len(kids), tt.kids)
			}
			res := r.Run(t.Context(), killAction(int32(cmd.Process.Pid)))
			if !res.GetOk() || !strings.Contains(res.GetMessage(), tt.want) {
				t.Fatalf("result = %v, want %q", res, tt.want)
			}
			select {
			case err := <-waited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != tt.signaled {
					t.Errorf("shell ended with %v, want %v", err, tt.signaled)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the shell still runs")
			}
			for _, k := range kids {
				if err := gone(k); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestKillProcessErrors(t *testing.T) {
	r := newTestRunner(SystemExec{})
	t.Run("unknown pid", func(t *testing.T) {
		res := r.Run(t.Context(), killAction(1<<30-1))
		if res.GetOk() || !strings.Contains(res.GetMessage(), "no such process") {
			t.Errorf("result = %v", res)
		}
	})
	t.Run("zombie", func(t *testing.T) {
		cmd := exec.Command("/bin/true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		proctabtest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
			if p, err := proctab.Read(cmd.Process.Pid); err != nil || !p.Zombie {
				return fmt.Errorf("not a zombie yet: %+v %v", p, err)
			}
			return nil
		})
		res := r.Run(t.Context(), killAction(int32(cmd.Process.Pid)))
		if res.GetOk() || !strings.Contains(res.GetMessage(), "already exited") {
			t.Errorf("result = %v", res)
		}
	})
}

func TestRestartServiceArgv(t *testing.T) {
	tests := []struct {
		name    string
		service string
		replies map[string]reply
		calls   []string
		ok      bool
		want    string
	}{
		{
			"active", "sshd", map[string]reply{"systemctl is-active sshd.service": {out: "active\n"}},
			[]string{"systemctl restart sshd.service", "systemctl is-active sshd.service"}, true, "restarted sshd.service; it is active",
		},
		{
			"suffix kept once", "getty@tty1.service", map[string]reply{"systemctl is-active getty@tty1.service": {out: "activating\n"}},
			[]string{"systemctl restart getty@tty1.service", "systemctl is-active getty@tty1.service"}, true, "it is activating",
		},
		{
			"inactive afterwards", "oneshot", map[string]reply{"systemctl is-active oneshot.service": {out: "inactive\n", err: errExit}},
			[]string{"systemctl restart oneshot.service", "systemctl is-active oneshot.service"}, true, "it is inactive",
		},
		{
			"failed afterwards", "web", map[string]reply{"systemctl is-active web.service": {out: "failed\n", err: errExit}},
			[]string{"systemctl restart web.service", "systemctl is-active web.service"}, false, "restarted web.service but it failed",
		},
		{
			"restart fails", "web", map[string]reply{"systemctl restart web.service": {out: "Job for web.service failed because the control process exited with error code.\n", err: errExit}},
			[]string{"systemctl restart web.service"}, false, "systemctl restart web.service failed: Job for web.service failed because the control process exited with error code.: exit status 1",
		},
		{
			"unknown unit", "nope", map[string]reply{"systemctl restart nope.service": {out: "Failed to restart nope.service: Unit nope.service not found.\n", err: errExit}},
			[]string{"systemctl restart nope.service"}, false, "Unit nope.service not found",
		},
		{
			"systemd not running", "sshd", map[string]reply{"systemctl restart sshd.service": {out: "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n", err: errExit}},
			[]string{"systemctl restart sshd.service"}, false, "action: systemd is not running here",
		},
		{
			"no systemctl", "sshd", map[string]reply{"systemctl restart sshd.service": {err: errNotFound}},
			[]string{"systemctl restart sshd.service"}, false, "action: systemd is not running here",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{replies: tt.replies}
			res := newTestRunner(rec).Run(t.Context(), restartAction(tt.service))
			if got := rec.argvs(); strings.Join(got, "|") != strings.Join(tt.calls, "|") {
				t.Errorf("calls = %q, want %q", got, tt.calls)
			}
			if res.GetOk() != tt.ok || !strings.Contains(res.GetMessage(), tt.want) {
				t.Errorf("result = %v, want ok %v and %q", res, tt.ok, tt.want)
			}
		})
	}
}

func TestFlushDNSArgv(t *testing.T) {
	down := reply{out: "Failed to flush caches: Unit dbus-org.freedesktop.resolve1.service not found.\n", err: errExit}
	tests := []struct {
		name    string
		replies map[string]reply
		calls   []string
		ok      bool
		want    string
	}{
		{
			"resolvectl", nil,
			[]string{"resolvectl flush-caches"}, true, "flushed the DNS cache (resolvectl flush-caches)",
		},
		{
			"old systemd", map[string]reply{"resolvectl flush-caches": {err: errNotFound}},
			[]string{"resolvectl flush-caches", "systemd-resolve --flush-caches"}, true, "(systemd-resolve --flush-caches)",
		},
		{
			"nscd", map[string]reply{"resolvectl flush-caches": down, "systemd-resolve --flush-caches": {err: errNotFound}},
			[]string{"resolvectl flush-caches", "nscd -i hosts"}, true, "(nscd -i hosts)",
		},
		{
			"resolved down, no nscd", map[string]reply{"resolvectl flush-caches": down, "nscd -i hosts": {err: errNotFound}},
			[]string{"resolvectl flush-caches", "nscd -i hosts"}, false, "action: not supported here: no local DNS cache to flush",
		},
		{
			"nothing installed", map[string]reply{"resolvectl flush-caches": {err: errNotFound}, "systemd-resolve --flush-caches": {err: errNotFound}, "nscd -i hosts": {err: errNotFound}},
			[]string{"resolvectl flush-caches", "systemd-resolve --flush-caches", "nscd -i hosts"}, false, "action: not supported here",
		},
		{
			"real failure", map[string]reply{"resolvectl flush-caches": {out: "Failed to flush caches: Access denied\n", err: errExit}, "nscd -i hosts": {err: errNotFound}},
			[]string{"resolvectl flush-caches", "nscd -i hosts"}, false, "resolvectl flush-caches failed: Failed to flush caches: Access denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{replies: tt.replies}
			res := newTestRunner(rec).Run(t.Context(), &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}})
			if got := rec.argvs(); strings.Join(got, "|") != strings.Join(tt.calls, "|") {
				t.Errorf("calls = %q, want %q", got, tt.calls)
			}
			if res.GetOk() != tt.ok || !strings.Contains(res.GetMessage(), tt.want) {
				t.Errorf("result = %v, want ok %v and %q", res, tt.ok, tt.want)
			}
		})
	}
}

func TestRebootArgv(t *testing.T) {
	const dflt = "Deskside: your support technician has scheduled a restart of this computer in "
	tests := []struct {
		name  string
		delay *durationpb.Duration
		msg   string
		reply reply
		argv  []string
		ok    bool
		want  string
	}{
		{"default delay", nil, "", reply{}, []string{"shutdown", "-r", "+5", dflt + "5 minutes. Please save your work."}, true, "restart scheduled in 5 minutes; logged-in users were told; cancel on the machine with shutdown -c"},
		{"below the minimum", durationpb.New(10 * time.Second), "", reply{}, []string{"shutdown", "-r", "+1", dflt + "1 minute. Please save your work."}, true, "in 1 minute"},
		{"rounded up", durationpb.New(150 * time.Second), "Updates", reply{}, []string{"shutdown", "-r", "+3", "Deskside: Updates"}, true, "in 3 minutes"},
		{"above the maximum", durationpb.New(72 * time.Hour), "", reply{}, []string{"shutdown", "-r", "+1440", dflt + "24 hours. Please save your work."}, true, "in 24 hours"},
		{"shutdown fails", nil, "x", reply{out: "Failed to connect to bus\n", err: errExit}, []string{"shutdown", "-r", "+5", "Deskside: x"}, false, "shutdown -r +5 failed: Failed to connect to bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{replies: map[string]reply{strings.Join(tt.argv, " "): tt.reply}}
			res := newTestRunner(rec).Run(t.Context(), rebootAction(tt.delay, tt.msg))
			if got := rec.argvs(); len(got) != 1 || got[0] != strings.Join(tt.argv, " ") {
				t.Errorf("calls = %q, want %q", got, strings.Join(tt.argv, " "))
			}
			if res.GetOk() != tt.ok || !strings.Contains(res.GetMessage(), tt.want) {
				t.Errorf("result = %v, want ok %v and %q", res, tt.ok, tt.want)
			}
		})
	}
}

// TestFlushDNSReal runs the real tools: on this machine either a cache is
// flushed or there is none to flush.
func TestFlushDNSReal(t *testing.T) {
	res := New(Options{Logger: quietLogger()}).Run(t.Context(), &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}})
	if !res.GetOk() && !strings.Contains(res.GetMessage(), "action: not supported here") {
		t.Errorf("result = %v, want success or not supported", res)
	}
	t.Logf("FlushDns here: %v", res)
}

func TestSystemExecRuns(t *testing.T) {
	out, err := SystemExec{}.Run(t.Context(), "sh", "-c", `echo "$LANG|$PATH"; echo err >&2`)
	if err != nil || string(out) != "C|/usr/sbin:/usr/bin:/sbin:/bin\nerr\n" {
		t.Errorf("Run = %q, %v", out, err)
	}
	out, err = SystemExec{}.Run(t.Context(), "sh", "-c", "echo bad; exit 3")
	if err == nil || errors.Is(err, exec.ErrNotFound) || string(out) != "bad\n" {
		t.Errorf("Run = %q, %v", out, err)
	}
}
