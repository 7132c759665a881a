package health

import (
	"context"
	"fmt"
)

// loadAvg: Windows has no load average. gopsutil emulates one with a
// background goroutine sampling the processor queue, which nothing could
// stop; the load fields stay zero instead.
func loadAvg(context.Context) ([3]float64, error) {
	return [3]float64{}, fmt.Errorf("load average: %w", ErrNotSupported)
}
