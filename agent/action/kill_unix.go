//go:build linux || darwin

package action

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/deskside/deskside/agent/proctab"
)

// killProcess ends pid and its descendants: SIGTERM, then SIGKILL after
// the grace period.
func (r *Runner) killProcess(ctx context.Context, pid int) (string, error) {
	procs, err := proctab.List()
	if err != nil {
		return "", fmt.Errorf("listing processes: %w", err)
	}
	byPID := make(map[int]proctab.Proc, len(procs))
	children := make(map[int][]int)
	for _, p := range procs {
		byPID[p.PID] = p
		if !p.Zombie {
			children[p.PPID] = append(children[p.PPID], p.PID)
		}
	}
	target, ok := byPID[pid]
	if !ok {
		return "", fmt.Errorf("%w: no process has pid %d", ErrNoProcess, pid)
	}
	if target.Zombie {
		return "", fmt.Errorf("%w: process %d has already exited (a zombie waiting for its parent)", ErrNoProcess, pid)
	}
	if isAncestor(byPID, os.Getpid(), pid) {
		return "", fmt.Errorf("%w: process %d is an ancestor of the agent", ErrRefused, pid)
	}

	// The target first, then its descendants, each held by a handle that
	// cannot be confused with a later process of the same pid.
	head, err := proctab.Open(target)
	if err != nil {
		return "", fmt.Errorf("%w: process %d exited meanwhile", ErrNoProcess, pid)
	}
	all := []*proctab.Handle{head}
	defer func() {
		for _, h := range all {
			h.Release()
		}
	}()
	for stack, seen := children[pid], map[int]bool{pid: true}; len(stack) > 0; {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] {
			continue
		}
		seen[c] = true
		stack = append(stack, children[c]...)
		if h, err := proctab.Open(byPID[c]); err == nil {
			all = append(all, h)
		}
	}

	if err := head.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return "", fmt.Errorf("not permitted to signal process %d (the agent needs to run as root): %w", pid, err)
		}
		if !errors.Is(err, syscall.ESRCH) {
			return "", fmt.Errorf("signalling process %d: %w", pid, err)
		}
	}
	for _, h := range all[1:] {
		_ = h.Signal(syscall.SIGTERM)
		_ = h.Signal(syscall.SIGCONT)
	}
	_ = head.Signal(syscall.SIGCONT)

	waitExit(ctx, all, r.grace)
	var forced []*proctab.Handle
	for _, h := range all {
		if !h.Exited() {
			forced = append(forced, h)
			_ = h.Signal(syscall.SIGKILL)
		}
	}
	if len(forced) > 0 {
		waitExit(ctx, forced, killWait)
	}
	var survivors int
	for _, h := range all {
		if !h.Exited() {
			survivors++
		}
	}

	what := fmt.Sprintf("process %d (%s)", pid, target.Name)
	if len(forced) > 0 && forced[0] == head {
		what += fmt.Sprintf(" did not exit within %v of SIGTERM and was killed with SIGKILL", r.grace)
	} else {
		what += " ended after SIGTERM"
	}
	if n := len(all) - 1; n > 0 {
		k := len(forced)
		if k > 0 && forced[0] == head {
			k--
		}
		what += fmt.Sprintf("; %d child process(es) ended too (%d needed SIGKILL)", n, k)
	}
	if survivors > 0 {
		return "", fmt.Errorf("%s, but %d process(es) still run after SIGKILL (uninterruptible sleep?)", what, survivors)
	}
	return what, nil
}

// isAncestor reports whether pid is an ancestor of process self.
func isAncestor(byPID map[int]proctab.Proc, self, pid int) bool {
	p, ok := byPID[self]
	for hops := 0; ok && p.PID > 1 && hops < len(byPID); hops++ {
		if p.PPID == pid {
			return true
		}
		p, ok = byPID[p.PPID]
	}
	return false
}

// pollEvery is the interval of waitExit.
const pollEvery = 20 * time.Millisecond

// waitExit polls until every handle has exited, d has passed, or ctx is
// done.
func waitExit(ctx context.Context, hs []*proctab.Handle, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		done := true
		for _, h := range hs {
			if !h.Exited() {
				done = false
				break
			}
		}
		if done || sleepCtx(ctx, pollEvery) != nil {
			return
		}
	}
}
