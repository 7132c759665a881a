package proctab

import (
	"testing"
	"time"
)

func TestCPUPercent(t *testing.T) {
	for _, tt := range []struct {
		name                string
		before, after, wall time.Duration
		want                float64
	}{
		{"one core", time.Second, 2 * time.Second, time.Second, 100},
		{"two cores", 0, 3 * time.Second, 1500 * time.Millisecond, 200},
		{"idle", time.Second, time.Second, time.Second, 0},
		{"quarter", 0, 250 * time.Millisecond, time.Second, 25},
		{"counter went back", 2 * time.Second, time.Second, time.Second, 0},
		{"no time passed", 0, time.Second, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := CPUPercent(tt.before, tt.after, tt.wall); got != tt.want {
				t.Errorf("CPUPercent(%v, %v, %v) = %v, want %v", tt.before, tt.after, tt.wall, got, tt.want)
			}
		})
	}
}
