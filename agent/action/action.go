package action

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

const (
	// DefaultKillGrace is how long KillProcess waits after SIGTERM.
	DefaultKillGrace = 5 * time.Second
	// DefaultRebootDelay applies when a Reboot names no delay.
	DefaultRebootDelay = 5 * time.Minute
	// MinRebootDelay and MaxRebootDelay bound a Reboot's delay.
	MinRebootDelay = time.Minute
	MaxRebootDelay = 24 * time.Hour

	// actionTimeout bounds one action (a slow service stop included).
	actionTimeout = 2 * time.Minute
	// killWait bounds the wait for processes to vanish after SIGKILL.
	killWait = 5 * time.Second
	// maxToolOutput caps what the Executor keeps of a tool's output.
	maxToolOutput = 64 << 10
	// maxRebootMessage caps the technician's reboot message (runes).
	maxRebootMessage = 200
)

// Log attribute keys.
const (
	logKeyAction = "action"
	logKeyOK     = "ok"
	logKeyMsg    = "message"
)

// Executor runs an external tool with fixed arguments, never through a
// shell, and returns its combined stdout and stderr. A tool that is not
// installed gives an error wrapping exec.ErrNotFound; a non-zero exit
// gives an error too, with the output still returned.
type Executor interface {
	Run(ctx context.Context, name string, args ...string) (output []byte, err error)
}

// Options configure a Runner.
type Options struct {
	// Logger receives one line per action; default slog.Default().
	Logger *slog.Logger
	// Exec runs the external tools; default the real one (SystemExec).
	Exec Executor
	// KillGrace is the wait between SIGTERM and SIGKILL: default
	// DefaultKillGrace.
	KillGrace time.Duration
}

// Runner carries out actions. It is safe for concurrent use.
type Runner struct {
	log   *slog.Logger
	exec  Executor
	grace time.Duration
}

// New returns a Runner.
func New(o Options) *Runner {
	r := &Runner{log: o.Logger, exec: o.Exec, grace: o.KillGrace}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.exec == nil {
		r.exec = SystemExec{}
	}
	if r.grace <= 0 {
		r.grace = DefaultKillGrace
	}
	return r
}

// Run carries out a and reports the outcome; it never panics on a
// malformed request.
func (r *Runner) Run(ctx context.Context, a *desksidev1.RunAction) *desksidev1.ActionResult {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	var (
		kind string
		msg  string
		err  error
	)
	switch act := a.GetAction().(type) {
	case *desksidev1.RunAction_KillProcess:
		kind = "kill_process"
		pid := int(act.KillProcess.GetPid())
		if err = checkPid(pid); err == nil {
			msg, err = r.killProcess(ctx, pid)
		}
	case *desksidev1.RunAction_RestartService:
		kind = "restart_service"
		var name string
		if name, err = serviceName(act.RestartService.GetName()); err == nil {
			msg, err = r.restartService(ctx, name)
		}
	case *desksidev1.RunAction_FlushDns:
		kind = "flush_dns"
		msg, err = r.flushDNS(ctx)
	case *desksidev1.RunAction_Reboot:
		kind = "reboot"
		var delay time.Duration
		if delay, err = rebootDelay(act.Reboot.GetDelay()); err == nil {
			msg, err = r.reboot(ctx, delay, rebootMessage(act.Reboot.GetMessage(), delay))
		}
	default:
		kind = "none"
		err = fmt.Errorf("%w: no action given", ErrBadRequest)
	}
	res := &desksidev1.ActionResult{Ok: err == nil, Message: msg}
	if err != nil {
		res.Message = err.Error()
	}
	r.log.Info("action", logKeyAction, kind, logKeyOK, res.Ok, logKeyMsg, res.Message)
	return res
}

// checkPid refuses pids the agent never ends.
func checkPid(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("%w: pid %d: only processes above pid 1 can be ended", ErrRefused, pid)
	}
	if pid == os.Getpid() {
		return fmt.Errorf("%w: pid %d is the agent itself", ErrRefused, pid)
	}
	return nil
}

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9@._:-]{1,128}$`)

// serviceName validates name and returns it without a .service suffix.
func serviceName(name string) (string, error) {
	base := strings.TrimSuffix(name, ".service")
	if !serviceNameRE.MatchString(base) || strings.HasPrefix(base, "-") || strings.HasPrefix(base, ".") {
		return "", fmt.Errorf("%w: invalid service name %q", ErrBadRequest, wire.CleanString(name, 64))
	}
	return base, nil
}

// rebootDelay applies the default and the bounds to d and rounds it up to
// whole minutes.
func rebootDelay(d *durationpb.Duration) (time.Duration, error) {
	delay := DefaultRebootDelay
	if d != nil {
		if err := d.CheckValid(); err != nil {
			return 0, fmt.Errorf("%w: delay: %w", ErrBadRequest, err)
		}
		switch v := d.AsDuration(); {
		case v < 0:
			return 0, fmt.Errorf("%w: negative delay %v", ErrBadRequest, v)
		case v > 0:
			delay = v
		}
	}
	delay = min(max(delay, MinRebootDelay), MaxRebootDelay)
	return (delay + time.Minute - 1).Truncate(time.Minute), nil
}

// rebootMessage is what the users are shown: msg cleaned of control and
// escape sequences, capped, or a default, prefixed with "Deskside: ".
func rebootMessage(msg string, delay time.Duration) string {
	msg = strings.TrimLeft(strings.TrimSpace(wire.CleanString(msg, maxRebootMessage)), "- ")
	if msg == "" {
		msg = "your support technician has scheduled a restart of this computer in " + humanDelay(delay) + ". Please save your work."
	}
	return "Deskside: " + msg
}

// humanDelay renders a whole-minute delay: "1 minute", "90 minutes", "2 hours".
func humanDelay(d time.Duration) string {
	m := int(d / time.Minute)
	switch {
	case m == 1:
		return "1 minute"
	case m == 60:
		return "1 hour"
	case m > 60 && m%60 == 0:
		return fmt.Sprintf("%d hours", m/60)
	}
	return fmt.Sprintf("%d minutes", m)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SystemExec is the real Executor: tools are looked up only in the system
// directories, get a fixed environment, and their output is capped at
// 64 KiB.
type SystemExec struct{}

var _ Executor = SystemExec{}

// Run runs the tool name with args.
func (SystemExec) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = toolEnv()
	var buf cappedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	// Should the tool leave a child holding its output, do not wait on it.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return buf.b, fmt.Errorf("%s: %w", name, err)
	}
	return buf.b, nil
}

// lookTool finds name in the system directories only.
func lookTool(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("tool %q: %w", name, exec.ErrNotFound)
	}
	for _, dir := range toolDirs() {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// cappedBuffer keeps the first maxToolOutput bytes written to it.
type cappedBuffer struct{ b []byte }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxToolOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
