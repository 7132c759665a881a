//go:build !windows

package consent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Dialog asks with zenity or kdialog on an X or Wayland display.
type Dialog struct {
	// Display is the X display ("" = the process's $DISPLAY).
	Display string
	Logger  *slog.Logger
	// LookPath finds programs (default exec.LookPath).
	LookPath func(string) (string, error)
}

func (d *Dialog) look(name string) (string, bool) {
	lp := d.LookPath
	if lp == nil {
		lp = exec.LookPath
	}
	p, err := lp(name)
	return p, err == nil
}

// env is the programs' environment: ours, on the session's display.
func (d *Dialog) env() ([]string, error) {
	env := os.Environ()
	if d.Display != "" {
		env = append(env, "DISPLAY="+d.Display)
	}
	if d.Display == "" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return nil, errors.New("no user is logged in to a graphical session to ask (no display)")
	}
	return env, nil
}

// Ask implements session.Consent: Allow, Deny (or closing the window) and
// the timeout, which denies. Return and Escape deny; Allow needs a click
// or Alt+A, so that typing into the desktop cannot allow by accident.
func (d *Dialog) Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	env, err := d.env()
	if err != nil {
		return 0, err
	}
	timeout := askTimeout(r)
	text := question(r, timeout, "")
	var cmd *exec.Cmd
	if p, ok := d.look("zenity"); ok {
		cmd = exec.Command(p, "--question", "--title", Title, "--text", text, "--no-markup",
			"--ok-label", "_Allow", "--cancel-label", "_Deny", "--default-cancel", "--width", "420",
			"--timeout", strconv.Itoa(int((timeout+time.Second-1)/time.Second)))
	} else if p, ok := d.look("kdialog"); ok {
		cmd = exec.Command(p, "--title", Title, "--yes-label", "Allow", "--no-label", "Deny", "--yesno", text)
	} else {
		return 0, ErrNoDialog
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("no way to ask the user: %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// kdialog has no timeout of its own; zenity's gets a second's grace.
	t := time.NewTimer(timeout + time.Second)
	defer t.Stop()
	select {
	case err = <-done:
	case <-t.C:
		cmd.Process.Kill()
		<-done
		return desksidev1.DesktopConsent_ANSWER_NO_ANSWER, nil
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return 0, ctx.Err()
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return 0, fmt.Errorf("no way to ask the user: %s: %v", cmd.Path, err)
	}
	msg := strings.TrimSpace(stderr.String())
	switch {
	case code == 0:
		return desksidev1.DesktopConsent_ANSWER_ALLOWED, nil
	case code == 5:
		return desksidev1.DesktopConsent_ANSWER_NO_ANSWER, nil
	case strings.Contains(msg, "cannot open display") || strings.Contains(msg, "could not connect to display"):
		return 0, fmt.Errorf("%w (%.200s)", ErrDisplayUnreachable, msg)
	case code == 1:
		return desksidev1.DesktopConsent_ANSWER_DENIED, nil
	}
	return 0, fmt.Errorf("the prompt failed (%s exited with %d: %.200s)", cmd.Path, code, msg)
}

// Notify implements session.Consent: a desktop notification, else (no
// notification daemon) a zenity window that closes by itself.
func (d *Dialog) Notify(ctx context.Context, r session.ConsentRequest) error {
	env, err := d.env()
	if err != nil {
		return err
	}
	var why []string
	if p, ok := d.look("notify-send"); ok && haveSessionBus() {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(nctx, p, "--app-name", "Deskside", "--urgency", "critical", Title, r.Notice())
		cmd.Env = env
		// A D-Bus daemon it started may hold its output open.
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		why = append(why, fmt.Sprintf("notify-send: %v %.200s", err, strings.TrimSpace(string(out))))
	}
	if p, ok := d.look("zenity"); ok {
		cmd := exec.Command(p, "--info", "--title", Title, "--text", r.Notice(), "--no-markup", "--width", "420", "--timeout", "60")
		cmd.Env = env
		if err := cmd.Start(); err == nil {
			go cmd.Wait() // it closes by itself or when the user closes it
			return nil
		} else {
			why = append(why, "zenity: "+err.Error())
		}
	}
	if len(why) == 0 {
		return errors.New("no way to tell the user: install libnotify-bin (notify-send) or zenity on the device")
	}
	return errors.New("the user could not be told: " + strings.Join(why, "; "))
}

// haveSessionBus reports whether the session has a D-Bus bus, which
// notifications need; without one, notify-send would start one of its
// own (X11 autolaunch) that nobody shows notifications from.
func haveSessionBus() bool {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return false
	}
	_, err := os.Stat(dir + "/bus")
	return err == nil
}
