package diag

import (
	"context"
	"fmt"
)

// loadAvg: Windows has no load average (gopsutil's emulation needs a
// background goroutine sampling for minutes).
func loadAvg(context.Context) ([3]float64, error) {
	return [3]float64{}, fmt.Errorf("load average: %w", ErrNotSupported)
}
