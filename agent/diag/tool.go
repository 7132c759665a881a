package diag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

const (
	// maxToolTime bounds any external tool, whatever the budget left.
	maxToolTime = 30 * time.Second
	// maxToolOutput caps what is kept of a tool's stdout (and of its
	// stderr); the rest is discarded.
	maxToolOutput = 1 << 20
	// toolWaitDelay is how long Wait waits for a killed tool's output
	// pipes (held open by grandchildren) before giving up on them.
	toolWaitDelay = 250 * time.Millisecond
)

// toolEnv overrides the agent's environment for tools: C locale, so that
// the output parsed is the untranslated one, and no pager or colours.
var toolEnv = []string{"LC_ALL=C", "LANG=C", "LANGUAGE=", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "PAGER=cat", "TERM=dumb"}

// toolResult is what a tool printed and how it exited.
type toolResult struct {
	stdout, stderr []byte
	exitCode       int // -1 when killed
}

// runTool runs the external tool name (looked up on PATH) with a fixed
// argument list, never through a shell, with stdin empty, in its own
// process group killed when ctx is done or maxToolTime elapses. A non-zero
// exit is not an error (callers read exitCode); a missing tool is an error
// wrapping ErrToolNotFound, a timeout one wrapping the context's error.
func (e *checkEnv) runTool(ctx context.Context, name string, args ...string) (toolResult, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return toolResult{exitCode: -1}, fmt.Errorf("%s: %w", name, ErrToolNotFound)
	}
	ctx, cancel := e.early(ctx)
	defer cancel()
	ctx, cancelMax := context.WithTimeout(ctx, maxToolTime)
	defer cancelMax()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), toolEnv...)
	stdout, stderr := &capBuffer{limit: maxToolOutput}, &capBuffer{limit: maxToolOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = toolWaitDelay
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return toolResult{exitCode: -1}, fmt.Errorf("start %s: %w", name, err)
	}
	if e.tools != nil {
		e.tools.add(int32(cmd.Process.Pid))
	}
	err = cmd.Wait()
	res := toolResult{stdout: stdout.b, stderr: stderr.b, exitCode: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s did not finish: %w", name, ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// capBuffer keeps the first limit bytes written to it and discards the
// rest (without failing the writer, so the tool is not killed by EPIPE).
type capBuffer struct {
	b     []byte
	limit int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.limit - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// pidSet records the processes a run's checks started, so that cpu.hogs
// does not report the triage's own tools.
type pidSet struct {
	mu   sync.Mutex
	pids map[int32]bool
}

func newPIDSet() *pidSet { return &pidSet{pids: map[int32]bool{}} }

func (s *pidSet) add(pid int32) {
	s.mu.Lock()
	s.pids[pid] = true
	s.mu.Unlock()
}

func (s *pidSet) has(pid int32) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pids[pid]
}
