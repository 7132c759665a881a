package health

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSample measures one steady-state sample (the agent takes one
// every 15 s; 0.1 % of a core is 15 ms per sample).
func BenchmarkSample(b *testing.B) {
	s := NewSampler(nil, Options{PrimeInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.Sample(ctx); err != nil { // prime outside the timing
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		if _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}
