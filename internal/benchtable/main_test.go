package main

import (
	"bytes"
	"testing"
)

// TestParseAndMedian: go test -count 3 prints a line per run; each
// metric's values are kept and the figure is their median.
func TestParseAndMedian(t *testing.T) {
	out := bytes.NewBufferString(`goos: linux
BenchmarkX-2   	       1	 5000 ns/op	 12.5 RSS-MB
BenchmarkX-2   	       1	 9000 ns/op	 10.0 RSS-MB
BenchmarkX-2   	       1	 7000 ns/op	 30.0 RSS-MB
BenchmarkY/batch=500-2 	 3	 56000 samples/s
PASS
`)
	res := map[string]map[string][]float64{}
	parse(out, "./p", res)
	if got := res["./p BenchmarkX"]["ns/op"]; len(got) != 3 {
		t.Fatalf("ns/op values: %v", got)
	}
	for _, c := range []struct {
		vals []float64
		want float64
		ok   bool
	}{
		{res["./p BenchmarkX"]["RSS-MB"], 12.5, true},
		{res["./p BenchmarkX"]["ns/op"], 7000, true},
		{res["./p BenchmarkY/batch=500"]["samples/s"], 56000, true},
		{[]float64{1, 2, 3, 10}, 2.5, true},
		{nil, 0, false},
	} {
		if v, ok := median(c.vals); v != c.want || ok != c.ok {
			t.Errorf("median(%v) = %v %v, want %v %v", c.vals, v, ok, c.want, c.ok)
		}
	}
}
