//go:build !linux

package health

import (
	"context"
	"fmt"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// readTemperatures is Linux only: gopsutil needs WMI (slow, admin) on
// Windows and cgo on macOS.
func readTemperatures(context.Context) ([]*desksidev1.Temperature, error) {
	return nil, fmt.Errorf("temperatures: %w", ErrNotSupported)
}
