// Package service installs, removes, queries and runs the Deskside agent
// as a system service (systemd, SysV init, launchd, Windows services)
// through kardianos/service, so every service manager has one code path.
//
// On top of kardianos/service it refuses what would leave a broken or
// half-removed service: managing the service without root, installing an
// executable that lives in a temporary directory (it refuses rather than
// copying itself: the hint names FixedInstallPath), and files a manager
// leaves behind at uninstall (SysV rc links, unit files), which it removes.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	ksvc "github.com/kardianos/service"
)

// Config describes a service.
type Config struct {
	Name        string
	DisplayName string
	Description string
	// Arguments passed to the executable when the manager starts it.
	Arguments []string
	// Executable defaults to the running binary.
	Executable string
}

// Actions accepted by Control.
var Actions = []string{"install", "uninstall", "start", "stop", "restart"}

type program struct {
	run    func(ctx context.Context) error
	cancel context.CancelFunc
	done   chan error
}

func (p *program) Start(ksvc.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	go func() { p.done <- p.run(ctx) }()
	return nil
}

func (p *program) Stop(ksvc.Service) error {
	if p.cancel != nil {
		p.cancel()
		return <-p.done
	}
	return nil
}

func newService(cfg Config, p *program) (ksvc.Service, error) {
	s, err := ksvc.New(p, &ksvc.Config{
		Name: cfg.Name, DisplayName: cfg.DisplayName, Description: cfg.Description,
		Arguments: cfg.Arguments, Executable: cfg.Executable,
		Option: ksvc.KeyValue{"Restart": "always", "OnFailure": "restart"},
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return s, nil
}

// Platform names the service manager in use, as kardianos/service calls
// it: "linux-systemd", "unix-systemv", "linux-openrc", "darwin-launchd",
// "windows-service", …
func Platform() string { return ksvc.Platform() }

// Result is what Control did.
type Result struct {
	Platform string   // service manager used
	Removed  []string // files removed after uninstall that the manager left behind
}

// Check reports whether action may run here: a known action, run with
// the privileges it needs (ErrNotPrivileged), and for install an executable
// outside temporary directories (ErrTemporaryBinary).
func Check(cfg Config, action string) error {
	if !slices.Contains(Actions, action) {
		return fmt.Errorf("%w: %q", ErrUnknownAction, action)
	}
	// A temporary binary first: telling someone to rerun it with sudo
	// would name a file that is about to go away.
	if action == "install" {
		exe, err := executable(cfg)
		if err != nil {
			return err
		}
		if IsTemporary(exe, TemporaryDirs()) {
			return &TemporaryBinaryError{Path: exe}
		}
	}
	if !privileged() {
		return ErrNotPrivileged
	}
	return nil
}

// executable is the program the service runs: cfg.Executable, or this one.
func executable(cfg Config) (string, error) {
	if cfg.Executable != "" {
		return cfg.Executable, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("service: find the executable: %w", err)
	}
	return exe, nil
}

// Control checks action (see Check) and performs it on the service
// described by cfg. Uninstall stops the service first and removes what the
// manager leaves behind (see Leftovers).
func Control(cfg Config, action string) (Result, error) {
	res := Result{Platform: Platform()}
	if err := Check(cfg, action); err != nil {
		return res, err
	}
	s, err := newService(cfg, &program{})
	if err != nil {
		return res, err
	}
	if action != "install" {
		if st, qerr := Query(cfg); qerr == nil && st == StateNotInstalled {
			if action == "uninstall" {
				return res, fmt.Errorf("%w (%s): nothing to uninstall", ErrNotInstalled, res.Platform)
			}
			return res, fmt.Errorf("%w (%s): install it first with: sudo deskside-agent install", ErrNotInstalled, res.Platform)
		}
	}
	if action == "uninstall" {
		s.Stop() // not running: nothing to stop
		err := s.Uninstall()
		exe, xerr := executable(cfg)
		if xerr != nil {
			return res, xerr
		}
		removed, rerr := RemoveLeftovers("/", cfg.Name, exe)
		res.Removed = removed
		if rerr != nil {
			return res, fmt.Errorf("service uninstall %s (%s): removing what the service manager left: %w; remove it by hand", cfg.Name, res.Platform, rerr)
		}
		if err != nil && len(res.Removed) == 0 {
			return res, fmt.Errorf("service uninstall %s (%s): %w", cfg.Name, res.Platform, err)
		}
		return res, nil
	}
	if err := ksvc.Control(s, action); err != nil {
		return res, fmt.Errorf("service %s %s (%s): %w", action, cfg.Name, res.Platform, err)
	}
	return res, nil
}

// TemporaryBinaryError is returned by Control("install") for an executable
// in a temporary directory. It matches ErrTemporaryBinary.
type TemporaryBinaryError struct{ Path string }

func (e *TemporaryBinaryError) Error() string {
	return fmt.Sprintf("%s: %v: copy it to a fixed place first, e.g. sudo install -m 0755 %s %s, then run sudo %s install",
		e.Path, ErrTemporaryBinary, e.Path, FixedInstallPath, FixedInstallPath)
}

func (e *TemporaryBinaryError) Unwrap() error { return ErrTemporaryBinary }

// State is whether the service is installed and running.
type State int

// States reported by Query.
const (
	StateUnknown State = iota
	StateNotInstalled
	StateStopped
	StateRunning
)

func (s State) String() string {
	switch s {
	case StateNotInstalled:
		return "not installed"
	case StateStopped:
		return "installed, stopped"
	case StateRunning:
		return "installed, running"
	}
	return "unknown"
}

// Query asks the service manager about the service.
func Query(cfg Config) (State, error) {
	s, err := newService(cfg, &program{})
	if err != nil {
		return StateUnknown, err
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, ksvc.ErrNotInstalled):
		return StateNotInstalled, nil
	case err != nil:
		// SysV asks `service NAME status`, which exits non-zero both when
		// there is no init script and when the service is not running.
		exe, _ := executable(cfg)
		if len(Leftovers("/", cfg.Name, exe)) == 0 {
			return StateNotInstalled, nil
		}
		return StateStopped, nil
	case st == ksvc.StatusRunning:
		return StateRunning, nil
	case st == ksvc.StatusStopped:
		return StateStopped, nil
	}
	return StateUnknown, nil
}

// Interactive reports whether the program runs from a terminal rather than
// under a service manager.
func Interactive() bool { return ksvc.Interactive() }

// Run runs fn under the service manager (which stops it by cancelling its
// context), or directly with ctx when started from a terminal.
func Run(ctx context.Context, cfg Config, fn func(ctx context.Context) error) error {
	if ksvc.Interactive() {
		return fn(ctx)
	}
	p := &program{run: fn}
	s, err := newService(cfg, p)
	if err != nil {
		return err
	}
	return s.Run()
}

// ElevateHint is the advice for ErrNotPrivileged, followed by the command
// line to run again.
func ElevateHint(commandLine string) string { return elevateHint + commandLine }
