package inventory

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCollect measures one full collection (target: 200 ms or less).
func BenchmarkCollect(b *testing.B) {
	c := New(nil)
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}
