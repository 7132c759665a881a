//go:build !linux && !darwin

package proctab

import (
	"fmt"
	"syscall"
)

// Handle is a stub: Open never returns one on this platform.
type Handle struct {
	start uint64
}

// Open returns an error wrapping ErrNotSupported.
func Open(p Proc) (*Handle, error) {
	return nil, fmt.Errorf("opening process %d: %w", p.PID, ErrNotSupported)
}

// Start is the start time of the process held.
func (h *Handle) Start() uint64 { return h.start }

// Signal returns an error wrapping ErrNotSupported.
func (h *Handle) Signal(syscall.Signal) error {
	return fmt.Errorf("signalling a process: %w", ErrNotSupported)
}

// Exited reports true: no process is held.
func (h *Handle) Exited() bool { return true }

// Release does nothing.
func (h *Handle) Release() {}
