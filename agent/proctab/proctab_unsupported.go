//go:build !linux && !darwin && !windows

package proctab

import (
	"context"
	"fmt"
)

// List returns an error wrapping ErrNotSupported.
func List() ([]Proc, error) {
	return nil, fmt.Errorf("listing processes: %w", ErrNotSupported)
}

// ListUsage returns an error wrapping ErrNotSupported.
func ListUsage(context.Context) ([]Proc, error) {
	return nil, fmt.Errorf("listing processes: %w", ErrNotSupported)
}

// Read returns an error wrapping ErrNotSupported.
func Read(pid int) (Proc, error) {
	return Proc{}, fmt.Errorf("reading process %d: %w", pid, ErrNotSupported)
}

// Owner returns an error wrapping ErrNotSupported.
func Owner(pid int) (string, error) {
	return "", fmt.Errorf("owner of process %d: %w", pid, ErrNotSupported)
}
