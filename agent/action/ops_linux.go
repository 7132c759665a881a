package action

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// isNotFound reports a tool that is not installed.
func isNotFound(err error) bool { return errors.Is(err, exec.ErrNotFound) }

// noDaemon are messages of tools whose daemon is not running here.
var noDaemon = []string{
	"not been booted with systemd",
	"Failed to connect to bus",
	"org.freedesktop.resolve1",
	"Could not activate remote peer",
	"not running",
}

func daemonAbsent(out []byte) bool {
	for _, s := range noDaemon {
		if bytes.Contains(out, []byte(s)) {
			return true
		}
	}
	return false
}

// restartService restarts name.service through systemctl and reports its
// state afterwards.
func (r *Runner) restartService(ctx context.Context, name string) (string, error) {
	unit := name + ".service"
	if out, err := r.exec.Run(ctx, "systemctl", "restart", unit); err != nil {
		if isNotFound(err) || daemonAbsent(out) {
			return "", fmt.Errorf("%w: systemctl restart %s: %s", ErrNoSystemd, unit, cmp.Or(excerpt(out), err.Error()))
		}
		return "", toolFailure("systemctl restart "+unit, out, err)
	}
	out, err := r.exec.Run(ctx, "systemctl", "is-active", unit)
	state, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	switch {
	case state == "" && err != nil:
		return "", toolFailure("systemctl is-active "+unit, out, err)
	case state == "failed":
		return "", fmt.Errorf("restarted %s but it failed; see journalctl -u %s", unit, unit)
	}
	return fmt.Sprintf("restarted %s; it is %s", unit, excerpt([]byte(state))), nil
}

// flushDNS flushes the first local DNS cache found.
func (r *Runner) flushDNS(ctx context.Context) (string, error) {
	tools := []struct {
		name string
		args []string
	}{
		{"resolvectl", []string{"flush-caches"}},
		// resolvectl's name before systemd 239; skipped when resolvectl
		// exists (it is then the same program).
		{"systemd-resolve", []string{"--flush-caches"}},
		{"nscd", []string{"-i", "hosts"}},
	}
	var (
		failures     []error
		haveResolved bool
	)
	for _, t := range tools {
		if t.name == "systemd-resolve" && haveResolved {
			continue
		}
		out, err := r.exec.Run(ctx, t.name, t.args...)
		what := t.name + " " + strings.Join(t.args, " ")
		if err == nil {
			return "flushed the DNS cache (" + what + ")", nil
		}
		if isNotFound(err) {
			continue
		}
		if t.name == "resolvectl" {
			haveResolved = true
		}
		if daemonAbsent(out) {
			r.log.Debug("action: DNS cache daemon not running", "tool", t.name, "output", excerpt(out))
			continue
		}
		failures = append(failures, toolFailure(what, out, err))
	}
	if len(failures) > 0 {
		return "", errors.Join(failures...)
	}
	return "", fmt.Errorf("%w: no local DNS cache to flush (tried resolvectl, systemd-resolve and nscd)", ErrNotSupported)
}

// reboot schedules a restart with shutdown -r +MINUTES MESSAGE.
func (r *Runner) reboot(ctx context.Context, delay time.Duration, message string) (string, error) {
	minutes := int(delay / time.Minute)
	out, err := r.exec.Run(ctx, "shutdown", "-r", "+"+strconv.Itoa(minutes), message)
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("%w: no shutdown command", ErrNotSupported)
		}
		return "", toolFailure("shutdown -r +"+strconv.Itoa(minutes), out, err)
	}
	return fmt.Sprintf("restart scheduled in %s; logged-in users were told; cancel on the machine with shutdown -c", humanDelay(delay)), nil
}
