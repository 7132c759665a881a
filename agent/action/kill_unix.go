//go:build linux || darwin

package action

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// killProcess ends pid and its descendants: SIGTERM, then SIGKILL after
// the grace period.
func (r *Runner) killProcess(ctx context.Context, pid int) (string, error) {
	procs, err := listProcs()
	if err != nil {
		return "", fmt.Errorf("listing processes: %w", err)
	}
	byPID := make(map[int]procInfo, len(procs))
	children := make(map[int][]int)
	for _, p := range procs {
		byPID[p.pid] = p
		if !p.zombie {
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	target, ok := byPID[pid]
	if !ok {
		return "", fmt.Errorf("%w: no process has pid %d", ErrNoProcess, pid)
	}
	if target.zombie {
		return "", fmt.Errorf("%w: process %d has already exited (a zombie waiting for its parent)", ErrNoProcess, pid)
	}
	if isAncestor(byPID, os.Getpid(), pid) {
		return "", fmt.Errorf("%w: process %d is an ancestor of the agent", ErrRefused, pid)
	}

	// The target first, then its descendants, each held by a handle that
	// cannot be confused with a later process of the same pid.
	head, err := openProc(target)
	if err != nil {
		return "", fmt.Errorf("%w: process %d exited meanwhile", ErrNoProcess, pid)
	}
	all := []*procHandle{head}
	defer func() {
		for _, h := range all {
			h.release()
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
		if h, err := openProc(byPID[c]); err == nil {
			all = append(all, h)
		}
	}

	if err := head.signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return "", fmt.Errorf("not permitted to signal process %d (the agent needs to run as root): %w", pid, err)
		}
		if !errors.Is(err, syscall.ESRCH) {
			return "", fmt.Errorf("signalling process %d: %w", pid, err)
		}
	}
	for _, h := range all[1:] {
		_ = h.signal(syscall.SIGTERM)
		_ = h.signal(syscall.SIGCONT)
	}
	_ = head.signal(syscall.SIGCONT)

	waitExit(ctx, all, r.grace)
	var forced []*procHandle
	for _, h := range all {
		if !h.exited() {
			forced = append(forced, h)
			_ = h.signal(syscall.SIGKILL)
		}
	}
	if len(forced) > 0 {
		waitExit(ctx, forced, killWait)
	}
	var survivors int
	for _, h := range all {
		if !h.exited() {
			survivors++
		}
	}

	what := fmt.Sprintf("process %d (%s)", pid, target.name)
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
func isAncestor(byPID map[int]procInfo, self, pid int) bool {
	p, ok := byPID[self]
	for hops := 0; ok && p.pid > 1 && hops < len(byPID); hops++ {
		if p.ppid == pid {
			return true
		}
		p, ok = byPID[p.ppid]
	}
	return false
}

// pollEvery is the interval of waitExit.
const pollEvery = 20 * time.Millisecond

// waitExit polls until every handle has exited, d has passed, or ctx is
// done.
func waitExit(ctx context.Context, hs []*procHandle, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		done := true
		for _, h := range hs {
			if !h.exited() {
				done = false
				break
			}
		}
		if done || sleepCtx(ctx, pollEvery) != nil {
			return
		}
	}
}

// procInfo is one process of the process table.
type procInfo struct {
	pid, ppid int
	// start identifies the process together with pid.
	start  uint64
	zombie bool
	name   string
}
