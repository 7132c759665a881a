package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/storetest"
)

// Health retention defaults (relay/server Config, relay.yaml
// health_retention and the like): raw samples 7 days, then hourly
// averages kept 400 days.
const (
	growthRawDays        = 7
	growthBucketsDays    = 400
	growthSamplesPerDay  = 24 * 3600 / 15 // one sample every 15 s
	growthFleet          = 10_000
	growthDetailBytes    = 512 // a real agent's marshalled sample on this machine: 507 bytes (one mount, top processes)
	growthDevices        = 100
	growthDaysPerDevice  = 2
	growthBatchPerDevice = 500
)

// usedBytes is the database's size in pages in use (page_count minus
// free pages, times the page size), after a WAL checkpoint.
func usedBytes(tb testing.TB, s *Store) int64 {
	tb.Helper()
	ctx := tb.Context()
	if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		tb.Fatal(err)
	}
	var pages, free, size int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := s.w.QueryRowContext(ctx, q).Scan(v); err != nil {
			tb.Fatal(err)
		}
	}
	return (pages - free) * size
}

// BenchmarkHealthStoreGrowth measures what health costs on disk: bytes per
// raw sample (indexes included) and per hourly average once downsampled,
// from 100 devices × 2 days of samples every 15 s with a 512-byte detail.
// From those it reports, for a fleet of 10,000 agents under the default
// retention, the growth per day and the size once raw samples reach their
// 7 days and hourly averages their 400.
func BenchmarkHealthStoreGrowth(b *testing.B) {
	for b.Loop() {
		s, _ := openTemp(b)
		ctx := b.Context()
		for d := range growthDevices {
			if err := s.CreateDevice(ctx, store.Device{ID: fmt.Sprintf("dev-%03d", d), Hostname: fmt.Sprintf("pc-%03d", d)}); err != nil {
				b.Fatal(err)
			}
		}
		base := usedBytes(b, s)
		start := time.Unix(1_800_000_000, 0).Truncate(time.Hour)
		perDevice := growthDaysPerDevice * growthSamplesPerDay
		for d := range growthDevices {
			for off := 0; off < perDevice; off += growthBatchPerDevice {
				n := min(growthBatchPerDevice, perDevice-off)
				batch := storetest.Samples(uint64(off), n, start, growthDetailBytes)
				for k := range batch {
					batch[k].Time = start.Add(time.Duration(off+k) * 15 * time.Second)
				}
				if _, err := s.AddHealthSamples(ctx, fmt.Sprintf("dev-%03d", d), batch); err != nil {
					b.Fatal(err)
				}
			}
		}
		raw := usedBytes(b, s) - base
		samples := int64(growthDevices * perDevice)
		end := start.Add(time.Duration(perDevice) * 15 * time.Second)
		folded, err := s.CompactHealth(ctx, end, time.Hour, start.Add(-time.Hour))
		if err != nil || folded != samples {
			b.Fatalf("compacted %d of %d: %v", folded, samples, err)
		}
		points := int64(growthDevices * growthDaysPerDevice * 24)
		bucket := usedBytes(b, s) - base
		perSample, perPoint := float64(raw)/float64(samples), float64(bucket)/float64(points)
		b.ReportMetric(perSample, "B/sample")
		b.ReportMetric(perPoint, "B/hourly-point")
		b.ReportMetric(growthFleet*growthSamplesPerDay*perSample/1e9, "GB/day@10k")
		steady := growthFleet * (growthRawDays*growthSamplesPerDay*perSample + growthBucketsDays*24*perPoint)
		b.ReportMetric(steady/1e9, "GB-steady@10k")
	}
	b.ReportMetric(0, "ns/op")
}
