package backup

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store"
)

// BenchmarkBackup measures Create on a running relay whose SQLite store
// holds 1,000 devices × one day of health at the agents' default 15 s
// (5,760 raw samples each, 5.76 million in all, each with its detail as
// the relay stores it: the sample's protobuf with two mounts and the top
// five processes by CPU and by memory). Metrics: the backup's time
// (ns/op), the database and archive sizes, and one restore's time.
func BenchmarkBackup(b *testing.B) {
	const (
		devices = 1000
		perDay  = 24 * 60 * 60 / 15
	)
	r := servertest.Start(b, servertest.Options{})
	st := r.Srv.Store()
	ctx := b.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	procs := []string{"chrome", "firefox", "code", "Xorg", "gnome-shell", "teams", "slack", "java", "python3", "dockerd", "systemd", "pipewire"}
	top := func() []*desksidev1.ProcessUsage {
		out := make([]*desksidev1.ProcessUsage, 5)
		for i := range out {
			out[i] = &desksidev1.ProcessUsage{Pid: rng.Int32N(60000), Name: procs[rng.IntN(len(procs))], User: "user",
				CpuPercent: float64(rng.IntN(4000)) / 10, RssBytes: uint64(rng.IntN(2 << 30))}
		}
		return out
	}
	rows := make([]store.HealthSample, perDay)
	for d := range devices {
		id := fmt.Sprintf("dev-%04d", d)
		if err := st.CreateDevice(ctx, store.Device{ID: id, Hostname: fmt.Sprintf("pc-%04d", d), CertSerial: fmt.Sprint(d), FirstSeen: start, LastSeen: start}); err != nil {
			b.Fatal(err)
		}
		for i := range rows {
			t := start.Add(time.Duration(i) * 15 * time.Second)
			hs := &desksidev1.HealthSample{
				Id: uint64(i + 1), Time: timestamppb.New(t), CpuPercent: float64(rng.IntN(1000)) / 10, Load1: rng.Float64() * 4,
				Load5: rng.Float64() * 4, Load15: rng.Float64() * 4, MemUsedBytes: uint64(rng.IntN(16 << 30)), MemAvailableBytes: uint64(rng.IntN(16 << 30)),
				MemTotalBytes: 16 << 30, SwapUsedBytes: uint64(rng.IntN(1 << 30)), SwapTotalBytes: 2 << 30,
				Mounts: []*desksidev1.MountUsage{
					{Mountpoint: "/", UsedPercent: 40 + rng.Float64(), FreeBytes: uint64(rng.IntN(100 << 30)), TotalBytes: 256 << 30},
					{Mountpoint: "/home", UsedPercent: 60 + rng.Float64(), FreeBytes: uint64(rng.IntN(100 << 30)), TotalBytes: 512 << 30},
				},
				NetRxBytesPerSec: float64(rng.IntN(1 << 20)), NetTxBytesPerSec: float64(rng.IntN(1 << 18)),
				TopCpu: top(), TopMemory: top(),
			}
			detail, err := proto.MarshalOptions{Deterministic: true}.Marshal(hs)
			if err != nil {
				b.Fatal(err)
			}
			rows[i] = store.HealthSample{ID: hs.Id, Time: t, CPUPercent: hs.CpuPercent, Load1: hs.Load1, MemUsedBytes: hs.MemUsedBytes,
				MemAvailBytes: hs.MemAvailableBytes, SwapUsedBytes: hs.SwapUsedBytes, DiskUsedPercent: hs.Mounts[1].UsedPercent,
				NetRxBps: hs.NetRxBytesPerSec, NetTxBps: hs.NetTxBytesPerSec, Detail: detail}
		}
		if _, err := st.AddHealthSamples(ctx, id, rows); err != nil {
			b.Fatal(err)
		}
	}
	db, err := os.Stat(filepath.Join(r.Dir, service.SQLiteFile))
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	var res Result
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := filepath.Join(out, fmt.Sprintf("b%d.tar.gz", i))
		if res, err = Create(ctx, Options{DataDir: r.Dir, Output: p}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if i > 0 {
			os.Remove(filepath.Join(out, fmt.Sprintf("b%d.tar.gz", i-1)))
		}
		b.StartTimer()
	}
	b.StopTimer()
	t0 := time.Now()
	if _, err := Restore(ctx, RestoreOptions{Archive: res.Path, DataDir: filepath.Join(b.TempDir(), "data")}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(t0).Seconds(), "restore-s")
	b.ReportMetric(float64(db.Size())/1e6, "db-MB")
	b.ReportMetric(float64(res.Size)/1e6, "archive-MB")
	for _, f := range res.Manifest.Files {
		if f.Name == service.SQLiteFile {
			b.ReportMetric(float64(f.Size)/1e6, "snapshot-MB")
		}
	}
}
