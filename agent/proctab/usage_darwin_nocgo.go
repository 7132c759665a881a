//go:build darwin && !cgo

package proctab

import (
	"context"
	"fmt"
)

// ListUsage returns an error wrapping ErrNotSupported: without cgo the
// per-process counters need libproc through ps, one process per process
// read, far too costly.
func ListUsage(context.Context) ([]Proc, error) {
	return nil, fmt.Errorf("process CPU and memory (macOS without cgo): %w", ErrNotSupported)
}
