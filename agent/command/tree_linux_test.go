package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/proctab"
	"github.com/deskside/deskside/agent/proctab/proctabtest"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// tracked returns the processes a command announced with "pid N" lines and
// its process group from its "group N" line, read from /proc while they run.
func tracked(t *testing.T, output string) (pgid int, procs []proctab.Proc) {
	t.Helper()
	for line := range strings.Lines(output) {
		kind, num, ok := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		switch kind {
		case "group":
			pgid = n
		case "pid":
			p, err := proctab.Read(n)
			if err != nil {
				t.Fatalf("process %d not found while it should run: %v", n, err)
			}
			procs = append(procs, p)
		}
	}
	if pgid == 0 {
		t.Fatalf("no group line in %q", output)
	}
	return pgid, procs
}

// treeGone fails unless no process of group pgid and none of procs runs
// (zombies do not run: this machine's init may not reap them).
func treeGone(pgid int, procs []proctab.Proc) error {
	all, err := proctab.List()
	if err != nil {
		return err
	}
	for _, p := range all {
		if p.Zombie {
			continue
		}
		if p.PGID == pgid {
			return fmt.Errorf("process %d of group %d still runs", p.PID, pgid)
		}
		for _, q := range procs {
			if p.PID == q.PID && p.Start == q.Start {
				return fmt.Errorf("process %d (outside the group) still runs", p.PID)
			}
		}
	}
	return nil
}

func needSetsid(t *testing.T) {
	_, err := exec.LookPath("setsid")
	testkit.Need(t, "setsid", err, "install the Debian package util-linux")
}

func TestCancelKillsTree(t *testing.T) {
	tests := []struct {
		name    string
		command string
		setsid  bool
		pids    int
	}{
		{"background children", `sleep 300 & echo pid $!; sleep 300 & echo pid $!; echo group $$; echo started; wait`, false, 2},
		{"children ignoring SIGTERM", `trap '' TERM; sleep 300 & echo pid $!; echo group $$; echo started; wait`, false, 1},
		{"double-forked child in the group", `(sh -c 'echo pid $$; exec sleep 300' &); sleep 0.2; echo group $$; echo started; sleep 300`, false, 1},
		{"setsid child", `setsid sleep 300 & echo pid $!; echo group $$; echo started; wait`, true, 1},
		{"setsid grandchild holding the pipes", `(setsid sh -c 'echo pid $$; exec sleep 300' &); sleep 0.2; echo group $$; echo started; sleep 300`, true, 1},
	}
	r := newTestRunner(Options{KillGrace: 300 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setsid {
				needSetsid(t)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			c := &collector{}
			done := runAsync(ctx, r, &desksidev1.RunCommand{Command: tt.command}, c)
			proctabtest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
				// A background child's "pid" line may come after
				// "started" on a loaded machine.
				if o := c.text(out); !strings.Contains(o, "started") || strings.Count(o, "pid ") < tt.pids {
					return errors.New("not started yet")
				}
				return nil
			})
			pgid, procs := tracked(t, c.text(out))
			if len(procs) != tt.pids {
				t.Fatalf("tracked %d processes, want %d: %q", len(procs), tt.pids, c.text(out))
			}
			cancel()
			res := await(t, done, 10*time.Second)
			if !res.GetCanceled() || res.GetExitCode() != -1 || res.GetTimedOut() {
				t.Errorf("exit = %v", res)
			}
			// Run returns only after the tree is gone: no waiting here.
			if err := treeGone(pgid, procs); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLeftoversEnded(t *testing.T) {
	tests := []struct {
		name    string
		command string
		setsid  bool
	}{
		{"background child", `sleep 300 & echo pid $!; echo group $$`, false},
		{"double-forked daemon in the group", `(sh -c 'echo pid $$; exec sleep 300' &); sleep 0.2; echo group $$`, false},
		{"setsid daemon holding the pipes", `(setsid sh -c 'echo pid $$; exec sleep 300' &); sleep 0.2; echo group $$`, true},
	}
	r := newTestRunner(Options{KillGrace: 300 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setsid {
				needSetsid(t)
			}
			c := &collector{}
			res := await(t, runAsync(t.Context(), r, &desksidev1.RunCommand{Command: tt.command}, c), 10*time.Second)
			if res.GetCanceled() || res.GetExitCode() != 0 || res.GetError() != "" {
				t.Errorf("exit = %v", res)
			}
			pgid, procs := tracked(t, c.text(out))
			if len(procs) != 1 {
				t.Fatalf("tracked %d processes: %q", len(procs), c.text(out))
			}
			if err := treeGone(pgid, procs); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestKillSparesTheAgentsOtherChildren: a process the agent itself started
// (another command, caught between fork and exec while it still held
// copies of this command's pipes, as happens when an agent starts
// several commands at once) holds the pipe; ending this command's tree
// leaves it alone. It used to be taken for a leftover of this command and
// sent SIGTERM: one `echo` in a thousand, fanned out to agents that share
// a process, ended with exit code -1 and no error.
func TestKillSparesTheAgentsOtherChildren(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other := exec.Command("sleep", "30")
	other.ExtraFiles = []*os.File{w} // as a fork's copy of every open descriptor
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan error, 1)
	go func() { otherDone <- other.Wait() }()
	defer other.Process.Kill()

	leader := exec.Command("sh", "-c", "exit 0")
	leader.Stdout = w
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	tr, err := startTree(leader, slog.New(slog.DiscardHandler), r)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if len(tr.pipes) == 0 {
		t.Fatal("the pipe's identity was not found under /proc")
	}
	if _, err := tr.wait(); err != nil {
		t.Fatal(err)
	}
	tr.kill(200 * time.Millisecond)
	select {
	case err := <-otherDone:
		t.Fatalf("the agent's other child was ended with this command's tree: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}
