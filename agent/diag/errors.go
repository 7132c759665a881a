package diag

import "errors"

var (
	// ErrNotSupported is wrapped by every reading this platform cannot
	// take yet (systemd, the journal, package managers, /proc on Windows
	// and macOS, the load average on Windows). The check reports
	// UNAVAILABLE "not supported on <os> yet".
	ErrNotSupported = errors.New("diag: not supported on this platform")

	// ErrToolNotFound is wrapped, with the tool's name, when an external
	// tool a check runs is not on PATH. The check reports UNAVAILABLE
	// saying what to install.
	ErrToolNotFound = errors.New("diag: tool not installed")

	// ErrNoSystemd is returned by the systemd-based readings when systemd
	// is not the running init (no /run/systemd/system: a container, or
	// another init system).
	ErrNoSystemd = errors.New("systemd is not running (no /run/systemd/system: a container or another init system)")

	// ErrNoJournal is returned by the journal reading when the machine
	// keeps no systemd journal.
	ErrNoJournal = errors.New("no systemd journal on this machine")

	// ErrNoPackageManager is returned by the update reading when neither
	// apt nor dnf is available.
	ErrNoPackageManager = errors.New("no supported package manager (apt, dnf)")
)
