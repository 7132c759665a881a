package sqlite

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// BenchmarkHealthIngest measures AddHealthSamples throughput: each op is
// one batch for one of a few devices, with every sample new. The target is
// 20,000 samples/s or more.
func BenchmarkHealthIngest(b *testing.B) {
	for _, batch := range []int{500, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, _ := openTemp(b)
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
			template := makeSamples(0, batch, start, 256)
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

// BenchmarkListDevices lists one page of 50 from a fleet of 10,000
// devices filtered by a hostname substring, the fleet view's query.
func BenchmarkListDevices(b *testing.B) {
	s, _ := openTemp(b)
	ctx := b.Context()
	const fleet = 10_000
	oses := []string{"Windows 11 Pro", "Windows 10 Enterprise", "Ubuntu 24.04", "macOS 15"}
	err := s.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO devices (id, hostname, os, online, model, memory_bytes)
			VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range fleet {
			site := []string{"HQ", "Lab", "Shop", "Remote"}[i%4]
			if _, err := stmt.ExecContext(ctx, fmt.Sprintf("dev-%05d", i), fmt.Sprintf("%s-PC-%05d", site, (i*7919)%fleet),
				oses[i%len(oses)], int64(i%2), "OptiPlex 7010", int64(16<<30)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		filter store.DeviceFilter
	}{
		{"hostname", store.DeviceFilter{Hostname: "lab-pc", Limit: 50}},
		{"hostname+online", store.DeviceFilter{Hostname: "pc-01", Online: ptr(true), Limit: 50}},
		{"unfiltered", store.DeviceFilter{Limit: 50}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// Page through the results: later pages start from an
			// After key, as the console does.
			f := tc.filter
			var total int64
			for b.Loop() {
				devs, n, err := s.ListDevices(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				total = n
				if len(devs) < f.Limit {
					f.AfterHostname, f.AfterID = "", ""
				} else {
					f.AfterHostname, f.AfterID = devs[len(devs)-1].Hostname, devs[len(devs)-1].ID
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(total), "matching")
		})
	}
}

func ptr[T any](v T) *T { return &v }
