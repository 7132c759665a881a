package command

import "errors"

var (
	// ErrBadRequest is wrapped by the error of a request that cannot run
	// as given: neither or both of command and script, an invalid
	// timeout, or an unusable #! line.
	ErrBadRequest = errors.New("command: bad request")

	// ErrNeedRoot is returned for run_as naming another user while the
	// agent does not run as root.
	ErrNeedRoot = errors.New("command: running as another user needs the agent to run as root")

	// ErrUnknownUser is wrapped when run_as names no local user.
	ErrUnknownUser = errors.New("command: unknown user")

	// ErrNotSupported is wrapped by features this platform lacks (run_as
	// on Windows; everything outside Linux, macOS and Windows).
	ErrNotSupported = errors.New("command: not supported on this platform")
)
