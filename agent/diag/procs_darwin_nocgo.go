//go:build darwin && !cgo

package diag

import (
	"context"
	"fmt"
)

// readProcs: without cgo gopsutil reads each macOS process by running ps,
// far too costly for a triage.
func readProcs(context.Context) (map[procKey]procInfo, error) {
	return nil, fmt.Errorf("processes (macOS without cgo): %w", ErrNotSupported)
}
