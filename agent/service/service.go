// Package service installs, removes and runs Deskside programs as system
// services (systemd, Windows services, launchd) through kardianos/service,
// so the agent and relay have one code path for every service manager.
package service

import (
	"context"
	"errors"
	"fmt"

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

// ErrUnknownAction is returned by Control for an action not in Actions.
var ErrUnknownAction = errors.New("service: unknown action (want install, uninstall, start, stop or restart)")

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

// Control performs action on the service described by cfg.
func Control(cfg Config, action string) error {
	known := false
	for _, a := range Actions {
		known = known || a == action
	}
	if !known {
		return fmt.Errorf("%w: %q", ErrUnknownAction, action)
	}
	s, err := newService(cfg, &program{})
	if err != nil {
		return err
	}
	if err := ksvc.Control(s, action); err != nil {
		return fmt.Errorf("service %s %s: %w", action, cfg.Name, err)
	}
	return nil
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
