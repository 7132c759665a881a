package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Samples returns n health samples with ids from firstID, one second apart
// from start, each with detail bytes of the given size.
func Samples(firstID uint64, n int, start time.Time, detail int) []store.HealthSample {
	out := make([]store.HealthSample, n)
	for i := range out {
		d := make([]byte, detail)
		for j := range d {
			d[j] = byte(i*31 + j*7)
		}
		out[i] = store.HealthSample{
			ID:              firstID + uint64(i),
			Time:            start.Add(time.Duration(i) * time.Second),
			CPUPercent:      float64(i%100) + 0.5,
			Load1:           float64(i%8) / 4,
			MemUsedBytes:    uint64(8<<30 + i*4096),
			MemAvailBytes:   uint64(8<<30 - i*4096),
			SwapUsedBytes:   uint64(i * 512),
			DiskUsedPercent: 71.25,
			NetRxBps:        float64(i * 1000),
			NetTxBps:        float64(i * 100),
			Detail:          d,
		}
	}
	return out
}

// BenchHealthIngest measures a backend's AddHealthSamples throughput
// (sub-benchmarks batch=500 and batch=100, metric samples/s; target 20,000
// or more): each op is one batch for one of a few devices, with every
// sample new. open returns a new, empty store.
func BenchHealthIngest(b *testing.B, open func(testing.TB) store.Store) {
	for _, batch := range []int{500, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := open(b)
			ctx := b.Context()
			const devices = 4
			for d := range devices {
				if err := s.CreateDevice(ctx, store.Device{ID: fmt.Sprintf("dev-%d", d), Hostname: fmt.Sprintf("pc-%d", d)}); err != nil {
					b.Fatal(err)
				}
			}
			// Ids and times advance per op so every sample is new. A
			// realistic detail (mounts, top processes) is ~256 bytes.
			start := time.Unix(1_800_000_000, 0)
			template := Samples(0, batch, start, 256)
			samples := make([]store.HealthSample, batch)

			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				// Renumbering costs well under 1% of an op.
				for k := range samples {
					h := template[k]
					h.ID = uint64(i*batch + k)
					h.Time = start.Add(time.Duration(i*batch+k) * time.Second)
					samples[k] = h
				}
				n, err := s.AddHealthSamples(ctx, fmt.Sprintf("dev-%d", i%devices), samples)
				if err != nil {
					b.Fatal(err)
				}
				if n != batch {
					b.Fatalf("stored %d of %d", n, batch)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
