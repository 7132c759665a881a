package spool

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func sample(cpu float64) *desksidev1.HealthSample {
	return &desksidev1.HealthSample{Time: timestamppb.Now(), CpuPercent: cpu}
}

func ids(t *testing.T, s *Spool) []uint64 {
	t.Helper()
	got, err := s.Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range got {
		out = append(out, m.GetId())
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendAckReopen(t *testing.T) {
	testkit.CheckGoroutines(t)
	dir := t.TempDir()
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		id, err := s.Append(sample(float64(i)))
		if err != nil || id != uint64(i+1) {
			t.Fatalf("append %d: id %d err %v", i, id, err)
		}
	}
	if err := s.Ack(2, 0); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s); !equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("after ack: %v", got)
	}
	s.Close()

	// Reopen: unacknowledged samples survive, ids keep increasing.
	s, err = Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s); !equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("after reopen: %v", got)
	}
	if id, _ := s.Append(sample(9)); id != 6 {
		t.Fatalf("next id %d, want 6", id)
	}
	if err := s.Ack(6, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Everything acknowledged: the log is empty, the id counter persists.
	s, err = Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 0 {
		t.Fatalf("len %d after full ack", s.Len())
	}
	if id, _ := s.Append(sample(1)); id != 7 {
		t.Fatalf("id after full ack and reopen %d, want 7", id)
	}
}

func TestBoundDropsOldestAndCounts(t *testing.T) {
	testkit.CheckGoroutines(t)
	dir := t.TempDir()
	s, err := Open(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		s.Append(sample(float64(i)))
	}
	if got := ids(t, s); !equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("kept %v", got)
	}
	if s.Dropped() != 2 {
		t.Fatalf("dropped %d", s.Dropped())
	}
	// The drop count survives a restart and is cleared by an ack carrying it.
	s.Ack(0, 0)
	s.Close()
	s, _ = Open(dir, 3)
	defer s.Close()
	if s.Dropped() != 2 {
		t.Fatalf("dropped after reopen %d", s.Dropped())
	}
	s.Ack(3, 2)
	if s.Dropped() != 0 || !equal(ids(t, s), []uint64{4, 5}) {
		t.Fatalf("after ack: dropped %d ids %v", s.Dropped(), ids(t, s))
	}
}

func TestTornTailIsCut(t *testing.T) {
	testkit.CheckGoroutines(t)
	dir := t.TempDir()
	s, _ := Open(dir, 100)
	s.Append(sample(1))
	s.Append(sample(2))
	s.Close()
	// A crash mid-write leaves half a record.
	f, _ := os.OpenFile(filepath.Join(dir, logName), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0, 0, 0, 50, 1, 2, 3, 4, 0, 0, 0, 0, 9, 9})
	f.Close()
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := ids(t, s); !equal(got, []uint64{1, 2}) {
		t.Fatalf("after torn tail: %v", got)
	}
	if id, err := s.Append(sample(3)); err != nil || id != 3 {
		t.Fatalf("append after repair: %d %v", id, err)
	}
	if got := ids(t, s); !equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("after repair: %v", got)
	}
}

func TestCompaction(t *testing.T) {
	testkit.CheckGoroutines(t)
	dir := t.TempDir()
	s, _ := Open(dir, 100000)
	defer s.Close()
	big := sample(1)
	big.TopCpu = []*desksidev1.ProcessUsage{{Name: strings.Repeat("p", 2000)}}
	for range 1200 {
		s.Append(big)
	}
	if err := s.Ack(1100, 0); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, logName))
	if fi.Size() > 500<<10 {
		t.Fatalf("log is %d bytes after acking most of it; not compacted", fi.Size())
	}
	if got := ids(t, s); len(got) != 100 || got[0] != 1101 {
		t.Fatalf("after compaction: %d ids from %v", len(got), got[:1])
	}
}

// A full disk: the log is /dev/full, every write fails with ENOSPC. The
// samples are kept in memory and still delivered.
func TestFullDiskKeepsSamples(t *testing.T) {
	testkit.CheckGoroutines(t)
	_, err := os.Stat("/dev/full")
	testkit.Need(t, "/dev/full", err, "run this test on Linux, where /dev/full always fails writes with ENOSPC")
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, logName)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		_, err := s.Append(sample(float64(i)))
		if err == nil || !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
			t.Fatalf("append on a full disk: %v, want ENOSPC", err)
		}
	}
	if got := ids(t, s); !equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("samples on full disk: %v", got)
	}
	s.Ack(2, 0)
	if got := ids(t, s); !equal(got, []uint64{3}) {
		t.Fatalf("after ack: %v", got)
	}
}

// bigSample is about 1 KB on disk: a sample with many mounts, as a file
// server reports.
func bigSample() *desksidev1.HealthSample {
	m := &desksidev1.HealthSample{Time: timestamppb.Now(), CpuPercent: 5}
	for i := range 20 {
		m.Mounts = append(m.Mounts, &desksidev1.MountUsage{Mountpoint: "/srv/volume-with-a-long-name/" + strings.Repeat("x", 20) + string(rune('a'+i))})
	}
	return m
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestByteCapWhileRelayDown appends for a long time with nothing
// acknowledged (the relay is down): the log file never exceeds its byte
// cap, the oldest samples go first, the drops are counted for the relay and
// said in a log line, and what is kept survives a restart.
func TestByteCapWhileRelayDown(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxItems int
	}{
		{"bytes bind", 1 << 20}, // the byte cap drops samples
		{"count binds", 20},     // the item cap drops; the file must still not grow
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			const maxBytes = 64 << 10
			var logs strings.Builder
			lg := slog.New(slog.NewTextHandler(&logs, nil))
			s, err := OpenWith(dir, Options{MaxItems: c.maxItems, MaxBytes: maxBytes, Logger: lg})
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000 // ~2 MB of samples
			for i := range n {
				if _, err := s.Append(bigSample()); err != nil {
					t.Fatal(err)
				}
				if sz := fileSize(t, dir); sz > maxBytes {
					t.Fatalf("after %d appends the log is %d bytes, cap %d", i+1, sz, maxBytes)
				}
			}
			got := ids(t, s)
			if len(got) == 0 || got[len(got)-1] != n || uint64(len(got))+s.Dropped() != n {
				t.Fatalf("kept %d samples (last %v), dropped %d, appended %d", len(got), got[len(got)-1:], s.Dropped(), n)
			}
			for i := 1; i < len(got); i++ {
				if got[i] != got[i-1]+1 {
					t.Fatalf("kept samples are not the newest run: %v", got)
				}
			}
			if c.maxItems > n && !strings.Contains(logs.String(), "dropped the oldest samples") {
				t.Errorf("no log line names the dropped samples:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "over its byte cap") {
				t.Errorf("no log line about the byte cap:\n%s", logs.String())
			}
			s.Close()
			s, err = OpenWith(dir, Options{MaxItems: c.maxItems, MaxBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if again := ids(t, s); !equal(again, got) {
				t.Fatalf("after reopening: %d samples, want %d", len(again), len(got))
			}
			// The relay comes back: everything kept is delivered.
			if err := s.Ack(got[len(got)-1], s.Dropped()); err != nil {
				t.Fatal(err)
			}
			if s.Len() != 0 || fileSize(t, dir) != 0 {
				t.Fatalf("after the Ack: %d samples, %d bytes", s.Len(), fileSize(t, dir))
			}
		})
	}
}

// A log left larger than the cap (by an older agent) is bounded at Open.
func TestByteCapAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		s.Append(bigSample())
	}
	s.Close()
	if sz := fileSize(t, dir); sz <= 128<<10 {
		t.Fatalf("setup: log only %d bytes", sz)
	}
	s, err = OpenWith(dir, Options{MaxItems: 1 << 20, MaxBytes: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sz := fileSize(t, dir); sz > 128<<10 {
		t.Fatalf("after Open the log is %d bytes", sz)
	}
	if got := ids(t, s); len(got) == 0 || got[len(got)-1] != 300 {
		t.Fatalf("the newest samples were not kept: %d kept", len(got))
	}
}

// TestByteCapDropsOnlyWhatDoesNotFit: when compacting away what the relay
// acknowledged brings the log under its cap, no waiting sample is dropped.
func TestByteCapDropsOnlyWhatDoesNotFit(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	s, err := OpenWith(dir, Options{MaxItems: 1 << 20, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last uint64
	for fileSize(t, dir) < 10<<10 {
		if last, err = s.Append(bigSample()); err != nil {
			t.Fatal(err)
		}
	}
	// All but the newest delivered: the file keeps the delivered ones
	// (about 10 KiB) until the next compaction.
	if err := s.Ack(last-1, 0); err != nil {
		t.Fatal(err)
	}
	// The relay goes away: samples wait until the file passes its cap,
	// while the waiting ones alone still fit under it.
	waiting := 1
	for fileSize(t, dir) < maxBytes-2<<10 {
		if _, err := s.Append(bigSample()); err != nil {
			t.Fatal(err)
		}
		waiting++
	}
	for range 3 { // over the cap: a compaction, which frees enough
		if _, err := s.Append(bigSample()); err != nil {
			t.Fatal(err)
		}
		waiting++
	}
	if s.Dropped() != 0 || s.Len() != waiting {
		t.Fatalf("dropped %d, kept %d of %d waiting samples; want none dropped", s.Dropped(), s.Len(), waiting)
	}
	if sz := fileSize(t, dir); sz > maxBytes {
		t.Fatalf("log is %d bytes, cap %d", sz, maxBytes)
	}
}
