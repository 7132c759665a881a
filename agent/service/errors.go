package service

import "errors"

var (
	// ErrUnknownAction is returned by Control for an action not in Actions.
	ErrUnknownAction = errors.New("service: unknown action (want install, uninstall, start, stop or restart)")
	// ErrNotPrivileged is returned by Control when the process may not manage
	// system services (not root on Unix, not elevated on Windows).
	ErrNotPrivileged = errors.New("managing the system service needs administrator rights")
	// ErrTemporaryBinary is returned by Control("install") when the
	// executable lives in a temporary directory, which is emptied at reboot
	// or (for `go run`) when the command exits: the service would point at a
	// file that goes away.
	ErrTemporaryBinary = errors.New("the executable lives in a temporary directory, which is cleaned up")
	// ErrNotInstalled is returned by Control for uninstall, start, stop or
	// restart when the service manager knows no such service and nothing
	// of it is left to remove.
	ErrNotInstalled = errors.New("the agent is not installed as a system service")
)
