package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// BenchmarkHealthIngest measures AddHealthSamples throughput, as the SQLite
// benchmark of the same name does: each op is one batch for one of a few
// devices, with every sample new. The target is 20,000 samples/s or more.
func BenchmarkHealthIngest(b *testing.B) {
	for _, batch := range []int{500, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, _ := openFresh(b)
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
			template := makeSamples(batch, start, 256)
			samples := make([]store.HealthSample, batch)

			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
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

// makeSamples returns n samples a second apart with plausible metrics and
// a detail of detail bytes.
func makeSamples(n int, start time.Time, detail int) []store.HealthSample {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]store.HealthSample, n)
	for i := range out {
		d := make([]byte, detail)
		for k := range d {
			d[k] = byte(r.IntN(256))
		}
		out[i] = store.HealthSample{
			ID:              uint64(i),
			Time:            start.Add(time.Duration(i) * time.Second),
			CPUPercent:      r.Float64() * 100,
			Load1:           r.Float64() * 8,
			MemUsedBytes:    uint64(r.Int64N(16 << 30)),
			MemAvailBytes:   uint64(r.Int64N(16 << 30)),
			SwapUsedBytes:   uint64(r.Int64N(1 << 30)),
			DiskUsedPercent: r.Float64() * 100,
			NetRxBps:        r.Float64() * 1e7,
			NetTxBps:        r.Float64() * 1e6,
			Detail:          d,
		}
	}
	return out
}
