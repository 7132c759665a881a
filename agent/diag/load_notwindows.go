//go:build !windows

package diag

import (
	"context"

	"github.com/shirou/gopsutil/v3/load"
)

// loadAvg returns the 1-, 5- and 15-minute load averages.
func loadAvg(ctx context.Context) ([3]float64, error) {
	a, err := load.AvgWithContext(ctx)
	if err != nil {
		return [3]float64{}, err
	}
	return [3]float64{a.Load1, a.Load5, a.Load15}, nil
}
