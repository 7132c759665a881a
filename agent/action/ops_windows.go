package action

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

const (
	// serviceStopWait bounds the wait for a service to stop.
	serviceStopWait = 30 * time.Second
	// serviceStatePoll is the interval of sc query while waiting.
	serviceStatePoll = 500 * time.Millisecond
	// Service states as sc query prints them (SERVICE_STATUS.dwCurrentState).
	serviceStopped      = 1
	serviceRunning      = 4
	serviceStartPending = 2
	// errServiceNotActive is sc stop's code for a service not running.
	errServiceNotActive = "1062"
)

// killProcess ends pid and its tree: taskkill /T (a polite close), then
// taskkill /T /F after the grace period.
func (r *Runner) killProcess(ctx context.Context, pid int) (string, error) {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		if errors.Is(err, windows.ERROR_INVALID_PARAMETER) {
			return "", fmt.Errorf("%w: no process has pid %d", ErrNoProcess, pid)
		}
		return "", fmt.Errorf("opening process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	spid := strconv.Itoa(pid)
	_, _ = r.exec.Run(ctx, "taskkill", "/PID", spid, "/T")
	if exitedWithin(h, r.grace) {
		return fmt.Sprintf("process %d ended after taskkill /T", pid), nil
	}
	if out, err := r.exec.Run(ctx, "taskkill", "/PID", spid, "/T", "/F"); err != nil && !exitedWithin(h, 0) {
		return "", toolFailure("taskkill /F", out, err)
	}
	if !exitedWithin(h, killWait) {
		return "", fmt.Errorf("process %d still runs after taskkill /F", pid)
	}
	return fmt.Sprintf("process %d did not close within %v and was ended with taskkill /F", pid, r.grace), nil
}

func exitedWithin(h windows.Handle, d time.Duration) bool {
	ev, err := windows.WaitForSingleObject(h, uint32(d.Milliseconds()))
	return err == nil && ev == windows.WAIT_OBJECT_0
}

// serviceState returns the state number sc query prints.
func (r *Runner) serviceState(ctx context.Context, name string) (int, []byte, error) {
	out, err := r.exec.Run(ctx, "sc", "query", name)
	if err != nil {
		return 0, out, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "STATE" {
			continue
		}
		if f := strings.Fields(val); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n, out, nil
			}
		}
	}
	return 0, out, errors.New("no STATE in sc query output")
}

// restartService stops the service, waits for it to stop, and starts it.
func (r *Runner) restartService(ctx context.Context, name string) (string, error) {
	if out, err := r.exec.Run(ctx, "sc", "stop", name); err != nil && !bytes.Contains(out, []byte(errServiceNotActive)) {
		return "", toolFailure("sc stop "+name, out, err)
	}
	deadline := time.Now().Add(serviceStopWait)
	for {
		state, out, err := r.serviceState(ctx, name)
		if err != nil {
			return "", toolFailure("sc query "+name, out, err)
		}
		if state == serviceStopped {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("service %s did not stop within %v", name, serviceStopWait)
		}
		if err := sleepCtx(ctx, serviceStatePoll); err != nil {
			return "", err
		}
	}
	if out, err := r.exec.Run(ctx, "sc", "start", name); err != nil {
		return "", toolFailure("sc start "+name, out, err)
	}
	state, out, err := r.serviceState(ctx, name)
	switch {
	case err != nil:
		return "", toolFailure("sc query "+name, out, err)
	case state == serviceRunning:
		return fmt.Sprintf("restarted %s; it is running", name), nil
	case state == serviceStartPending:
		return fmt.Sprintf("restarted %s; it is starting", name), nil
	}
	return "", fmt.Errorf("restarted %s but it is in state %d", name, state)
}

// flushDNS runs ipconfig /flushdns.
func (r *Runner) flushDNS(ctx context.Context) (string, error) {
	if out, err := r.exec.Run(ctx, "ipconfig", "/flushdns"); err != nil {
		return "", toolFailure("ipconfig /flushdns", out, err)
	}
	return "flushed the DNS cache (ipconfig /flushdns)", nil
}

// reboot schedules a restart with shutdown /r /t SECONDS /c MESSAGE.
func (r *Runner) reboot(ctx context.Context, delay time.Duration, message string) (string, error) {
	secs := strconv.Itoa(int(delay / time.Second))
	if out, err := r.exec.Run(ctx, "shutdown", "/r", "/t", secs, "/c", message); err != nil {
		return "", toolFailure("shutdown /r", out, err)
	}
	return fmt.Sprintf("restart scheduled in %s; logged-in users were told; cancel on the machine with shutdown /a", humanDelay(delay)), nil
}
