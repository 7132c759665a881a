//go:build linux || darwin

package proctab_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/proctab"
	"github.com/deskside/deskside/agent/proctab/proctabtest"
)

func TestReadSelf(t *testing.T) {
	p, err := proctab.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.PPID != os.Getppid() || p.PGID != syscall.Getpgrp() || p.Start == 0 || p.Zombie || p.Name == "" {
		t.Errorf("Read(self) = %+v", p)
	}
	again, err := proctab.Read(os.Getpid())
	if err != nil || again.Start != p.Start {
		t.Errorf("start time changed: %+v then %+v (%v)", p, again, err)
	}
}

func TestReadUnknown(t *testing.T) {
	if p, err := proctab.Read(1<<30 - 1); err == nil {
		t.Errorf("Read(unused pid) = %+v, want an error", p)
	}
}

func TestListHasSelf(t *testing.T) {
	procs, err := proctab.List()
	if err != nil {
		t.Fatal(err)
	}
	self, err := proctab.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range procs {
		if p.PID == self.PID {
			found = true
			if p.Start != self.Start || p.PPID != self.PPID {
				t.Errorf("List has %+v, Read %+v", p, self)
			}
		}
	}
	if !found {
		t.Errorf("List: %d processes, none is this one (%d)", len(procs), self.PID)
	}
}

// started starts sleep and returns it as the process table shows it.
func started(t *testing.T) (*exec.Cmd, proctab.Proc) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	p, err := proctab.Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.PPID != os.Getpid() {
		t.Fatalf("child %+v: parent is not this process", p)
	}
	return cmd, p
}

func TestHandle(t *testing.T) {
	_, p := started(t)
	h, err := proctab.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if h.Start() != p.Start {
		t.Errorf("Start = %d, want %d", h.Start(), p.Start)
	}
	if h.Exited() {
		t.Fatal("Exited before any signal")
	}
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not reaped: the child stays a zombie, which counts as exited.
	proctabtest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if !h.Exited() {
			return errors.New("still runs after SIGTERM")
		}
		return nil
	})
	proctabtest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if cur, err := proctab.Read(p.PID); err != nil || !cur.Zombie {
			return fmt.Errorf("not a zombie yet: %+v %v", cur, err)
		}
		return nil
	})
	h.Release()
	h.Release()
}

// TestStaleStart holds a pid with a start time that is not its process's,
// as after the pid was recycled: the process must never be signalled.
func TestStaleStart(t *testing.T) {
	_, p := started(t)
	stale := p
	stale.Start++
	h, err := proctab.Open(stale)
	if err == nil {
		defer h.Release()
		if err := h.Signal(syscall.SIGKILL); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Signal through a stale handle = %v, want ESRCH", err)
		}
		if !h.Exited() {
			t.Error("a stale handle's process counts as running")
		}
	} else if !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Open(stale) = %v, want os.ErrProcessDone", err)
	}
	if cur, err := proctab.Read(p.PID); err != nil || cur.Start != p.Start || cur.Zombie {
		t.Errorf("the process was hit: %+v %v", cur, err)
	}
}
