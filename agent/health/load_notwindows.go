//go:build !windows

package health

import (
	"context"

	"github.com/shirou/gopsutil/v3/load"
)

func loadAvg(ctx context.Context) ([3]float64, error) {
	a, err := load.AvgWithContext(ctx)
	if err != nil {
		return [3]float64{}, err
	}
	return [3]float64{a.Load1, a.Load5, a.Load15}, nil
}
