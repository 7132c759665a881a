package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var healthTests = []subtest{
	{"AddDedup", testHealthAddDedup},
	{"Batches", testHealthBatches},
	{"Latest", testHealthLatest},
	{"Range", testHealthRange},
	{"Compact", testHealthCompact},
	{"CompactDrop", testHealthCompactDrop},
}

// sample returns a sample at hour0+at whose metrics derive from v, with
// integers that average exactly.
func sample(id uint64, at time.Duration, v float64) store.HealthSample {
	return store.HealthSample{
		ID:              id,
		Time:            hour0.Add(at),
		CPUPercent:      v,
		Load1:           v / 10,
		MemUsedBytes:    uint64(v) << 20,
		MemAvailBytes:   uint64(1000-v) << 20,
		SwapUsedBytes:   uint64(v) * 3,
		DiskUsedPercent: v / 2,
		NetRxBps:        v * 1000,
		NetTxBps:        v * 10,
		Detail:          []byte(fmt.Sprintf("detail %d", id)),
	}
}

// rawPoint is the HealthPoint of a raw sample.
func rawPoint(h store.HealthSample) store.HealthPoint {
	return store.HealthPoint{
		Time: h.Time, CPUPercent: h.CPUPercent, Load1: h.Load1,
		MemUsedBytes: h.MemUsedBytes, MemAvailBytes: h.MemAvailBytes, SwapUsedBytes: h.SwapUsedBytes,
		DiskUsedPercent: h.DiskUsedPercent, NetRxBps: h.NetRxBps, NetTxBps: h.NetTxBps,
	}
}

// bucketPoint is the HealthPoint of a bucket of width w starting at start
// holding the samples with metrics derived from vs: each metric averaged.
func bucketPoint(start time.Time, w time.Duration, vs ...float64) store.HealthPoint {
	var sum [8]float64
	for _, v := range vs {
		p := rawPoint(sample(0, 0, v))
		for i, x := range []float64{p.CPUPercent, p.Load1, float64(p.MemUsedBytes), float64(p.MemAvailBytes),
			float64(p.SwapUsedBytes), p.DiskUsedPercent, p.NetRxBps, p.NetTxBps} {
			sum[i] += x
		}
	}
	n := float64(len(vs))
	avgU := func(x float64) uint64 { return uint64(math.Round(x / n)) }
	return store.HealthPoint{
		Time: start, Bucket: w,
		CPUPercent: sum[0] / n, Load1: sum[1] / n,
		MemUsedBytes: avgU(sum[2]), MemAvailBytes: avgU(sum[3]), SwapUsedBytes: avgU(sum[4]),
		DiskUsedPercent: sum[5] / n, NetRxBps: sum[6] / n, NetTxBps: sum[7] / n,
	}
}

// samePoints compares health series, floats to a relative 1e-9 and byte
// counts to within one (averages may round either way).
func samePoints(t *testing.T, what string, got, want []store.HealthPoint) {
	t.Helper()
	fail := func() {
		t.Helper()
		t.Fatalf("%s:\n got %+v\nwant %+v", what, normalize(got), normalize(want))
	}
	if len(got) != len(want) {
		fail()
	}
	closeU := func(a, b uint64) bool { return max(a, b)-min(a, b) <= 1 }
	for i, g := range got {
		w := want[i]
		if !g.Time.Equal(w.Time) || g.Bucket != w.Bucket ||
			!near(g.CPUPercent, w.CPUPercent) || !near(g.Load1, w.Load1) ||
			!closeU(g.MemUsedBytes, w.MemUsedBytes) || !closeU(g.MemAvailBytes, w.MemAvailBytes) ||
			!closeU(g.SwapUsedBytes, w.SwapUsedBytes) || !near(g.DiskUsedPercent, w.DiskUsedPercent) ||
			!near(g.NetRxBps, w.NetRxBps) || !near(g.NetTxBps, w.NetTxBps) {
			fail()
		}
	}
}

func testHealthAddDedup(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	batch := []store.HealthSample{sample(1, 0, 10), sample(2, time.Minute, 20), sample(math.MaxUint64, 2*time.Minute, 30)}

	tests := []struct {
		name    string
		device  string
		samples []store.HealthSample
		want    int
	}{
		{"new", "dev-1", batch, 3},
		{"same ids again", "dev-1", batch, 0},
		{"some new", "dev-1", []store.HealthSample{sample(2, time.Minute, 20), sample(4, 3*time.Minute, 40), sample(5, 4*time.Minute, 50)}, 2},
		{"repeat within batch", "dev-1", []store.HealthSample{sample(6, 5*time.Minute, 60), sample(6, 5*time.Minute, 60)}, 1},
		{"same ids other device", "dev-2", batch, 3},
		{"empty", "dev-1", nil, 0},
	}
	for _, tc := range tests {
		n, err := s.AddHealthSamples(ctx, tc.device, tc.samples)
		ok(t, err, "%s: AddHealthSamples", tc.name)
		if n != tc.want {
			t.Errorf("%s: AddHealthSamples = %d, want %d", tc.name, n, tc.want)
		}
	}

	// A duplicate id keeps the first sample stored under it.
	n, err := s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{sample(1, 0, 99)})
	ok(t, err, "AddHealthSamples(changed duplicate)")
	if n != 0 {
		t.Errorf("AddHealthSamples(changed duplicate) = %d, want 0", n)
	}

	pts, err := s.HealthRange(ctx, "dev-1", hour0, hour0.Add(time.Hour))
	ok(t, err, "HealthRange")
	samePoints(t, "dev-1 series", pts, []store.HealthPoint{
		rawPoint(sample(1, 0, 10)), rawPoint(sample(2, time.Minute, 20)), rawPoint(sample(3, 2*time.Minute, 30)),
		rawPoint(sample(4, 3*time.Minute, 40)), rawPoint(sample(5, 4*time.Minute, 50)), rawPoint(sample(6, 5*time.Minute, 60)),
	})

	_, err = s.AddHealthSamples(ctx, "nope", batch)
	wantErr(t, err, store.ErrNotFound, "AddHealthSamples(unknown device)")
}

// testHealthBatches checks store.HealthBatcher, for the stores that have
// it: several devices in one call, duplicates ignored per device, an
// unknown device failing only its own batch, and the touch.
func testHealthBatches(t *testing.T, s store.Store) {
	hb, isBatcher := s.(store.HealthBatcher)
	if !isBatcher {
		t.Skip("this store writes each device's health on its own (no store.HealthBatcher)")
	}
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	_, err := s.AddHealthSamples(ctx, "dev-2", []store.HealthSample{sample(1, 0, 10)})
	ok(t, err, "AddHealthSamples")
	touched := hour0.Add(42 * time.Minute)
	batches := []store.HealthBatch{
		{DeviceID: "dev-1", Samples: []store.HealthSample{sample(1, 0, 10), sample(2, time.Minute, 20)}},
		{DeviceID: "nope", Samples: []store.HealthSample{sample(1, 0, 10)}, Touch: touched},
		{DeviceID: "dev-2", Samples: []store.HealthSample{sample(1, 0, 10), sample(3, 2*time.Minute, 30)}, Touch: touched},
		{DeviceID: "dev-1", Samples: []store.HealthSample{sample(2, time.Minute, 20)}},
		{DeviceID: "dev-1", Touch: touched},
	}
	ok(t, hb.AddHealthBatches(ctx, batches), "AddHealthBatches")
	for i, want := range []int{2, 0, 1, 0, 0} {
		if batches[i].Added != want {
			t.Errorf("batch %d (%s): Added = %d, want %d", i, batches[i].DeviceID, batches[i].Added, want)
		}
	}
	wantErr(t, batches[1].Err, store.ErrNotFound, "AddHealthBatches(unknown device)")
	for _, i := range []int{0, 2, 3, 4} {
		ok(t, batches[i].Err, "batch %d", i)
	}
	pts, err := s.HealthRange(ctx, "dev-2", hour0, hour0.Add(time.Hour))
	ok(t, err, "HealthRange")
	samePoints(t, "dev-2 series", pts, []store.HealthPoint{rawPoint(sample(1, 0, 10)), rawPoint(sample(3, 2*time.Minute, 30))})
	for _, id := range []string{"dev-1", "dev-2"} {
		d, err := s.GetDevice(ctx, id)
		ok(t, err, "GetDevice")
		if !d.LastSeen.Equal(touched) {
			t.Errorf("%s: last seen %v, want %v (touched in the batch)", id, d.LastSeen, touched)
		}
	}
	if _, err := s.GetDevice(ctx, "nope"); err == nil {
		t.Error("the unknown device of a batch exists afterwards")
	}
}

func testHealthLatest(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	_, err := s.LatestHealth(ctx, "dev-1")
	wantErr(t, err, store.ErrNotFound, "LatestHealth(no samples)")
	_, err = s.LatestHealth(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "LatestHealth(unknown device)")

	// The newest by time, not by id or insertion order; all fields exact,
	// including an id above MaxInt64 and the detail bytes.
	newest := sample(math.MaxUint64-1, 10*time.Minute+7, 42.125)
	newest.Load1 = 1.0 / 3
	newest.MemUsedBytes = math.MaxUint64
	_, err = s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{sample(9, 5*time.Minute, 1), newest, sample(10, 0, 2)})
	ok(t, err, "AddHealthSamples")
	_, err = s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{sample(11, 9*time.Minute, 3)})
	ok(t, err, "AddHealthSamples")
	_, err = s.AddHealthSamples(ctx, "dev-2", []store.HealthSample{sample(12, time.Hour, 4)})
	ok(t, err, "AddHealthSamples(dev-2)")

	got, err := s.LatestHealth(ctx, "dev-1")
	ok(t, err, "LatestHealth")
	same(t, "LatestHealth", got, newest)
	got, err = s.LatestHealth(ctx, "dev-2")
	ok(t, err, "LatestHealth(dev-2)")
	same(t, "LatestHealth(dev-2)", got, sample(12, time.Hour, 4))

	// No detail is fine.
	plain := sample(13, 20*time.Minute, 5)
	plain.Detail = nil
	_, err = s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{plain})
	ok(t, err, "AddHealthSamples(no detail)")
	got, err = s.LatestHealth(ctx, "dev-1")
	ok(t, err, "LatestHealth")
	same(t, "LatestHealth(no detail)", got, plain)
}

func testHealthRange(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	var all []store.HealthSample
	for i := range 10 {
		all = append(all, sample(uint64(100+i), time.Duration(i)*time.Minute, float64(i*10)))
	}
	// Stored out of order, in two batches.
	_, err := s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{all[7], all[2], all[9], all[0], all[5]})
	ok(t, err, "AddHealthSamples")
	_, err = s.AddHealthSamples(ctx, "dev-1", []store.HealthSample{all[1], all[8], all[3], all[6], all[4]})
	ok(t, err, "AddHealthSamples")
	_, err = s.AddHealthSamples(ctx, "dev-2", []store.HealthSample{sample(1, 3*time.Minute, 77)})
	ok(t, err, "AddHealthSamples(dev-2)")

	points := func(hs ...store.HealthSample) []store.HealthPoint {
		var out []store.HealthPoint
		for _, h := range hs {
			out = append(out, rawPoint(h))
		}
		return out
	}
	tests := []struct {
		name     string
		from, to time.Duration
		want     []store.HealthPoint
	}{
		{"all", -time.Hour, time.Hour, points(all...)},
		{"from inclusive, to exclusive", 2 * time.Minute, 5 * time.Minute, points(all[2], all[3], all[4])},
		{"between samples", 2*time.Minute + 1, 5*time.Minute - 1, points(all[3], all[4])},
		{"one", 9 * time.Minute, 9*time.Minute + 1, points(all[9])},
		{"empty interval", 4 * time.Minute, 4 * time.Minute, nil},
		{"before all", -time.Hour, 0, nil},
		{"after all", 10 * time.Minute, time.Hour, nil},
	}
	for _, tc := range tests {
		got, err := s.HealthRange(ctx, "dev-1", hour0.Add(tc.from), hour0.Add(tc.to))
		ok(t, err, "%s: HealthRange", tc.name)
		samePoints(t, tc.name, got, tc.want)
	}
	got, err := s.HealthRange(ctx, "nope", hour0.Add(-time.Hour), hour0.Add(time.Hour))
	ok(t, err, "HealthRange(unknown device)")
	samePoints(t, "unknown device", got, nil)
}

func testHealthCompact(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	const h = time.Hour
	add := func(dev string, hs ...store.HealthSample) {
		t.Helper()
		_, err := s.AddHealthSamples(ctx, dev, hs)
		ok(t, err, "AddHealthSamples(%s)", dev)
	}
	rangeOf := func(dev string) []store.HealthPoint {
		t.Helper()
		pts, err := s.HealthRange(ctx, dev, hour0.Add(-24*h), hour0.Add(24*h))
		ok(t, err, "HealthRange(%s)", dev)
		return pts
	}
	compact := func(rawBefore time.Time, dropBefore time.Time, want int64) {
		t.Helper()
		n, err := s.CompactHealth(ctx, rawBefore, h, dropBefore)
		ok(t, err, "CompactHealth")
		if n != want {
			t.Fatalf("CompactHealth(%v) folded %d, want %d", rawBefore, n, want)
		}
	}
	longAgo := hour0.Add(-48 * h)

	// Hour 0: three samples, hour 1: two, hour 2: one old and two new.
	a := []store.HealthSample{
		sample(1, 5*time.Minute, 10), sample(2, 20*time.Minute, 20), sample(3, 40*time.Minute, 60),
		sample(4, h+10*time.Minute, 40), sample(5, h+50*time.Minute, 80),
		sample(6, 2*h+10*time.Minute, 10), sample(7, 2*h+30*time.Minute, 20), sample(8, 2*h+50*time.Minute, 90),
	}
	add("dev-1", a...)
	b := []store.HealthSample{sample(1, 15*time.Minute, 5), sample(2, 45*time.Minute, 15), sample(3, 2*h+40*time.Minute, 50)}
	add("dev-2", b...)

	// First compaction: everything before 2h20m. Samples 6 (dev-1) is
	// folded into a 2h bucket of its own; 7 and 8 stay raw.
	compact(hour0.Add(2*h+20*time.Minute), longAgo, 6+2)
	samePoints(t, "dev-1 after first compaction", rangeOf("dev-1"), []store.HealthPoint{
		bucketPoint(hour0, h, 10, 20, 60),
		bucketPoint(hour0.Add(h), h, 40, 80),
		bucketPoint(hour0.Add(2*h), h, 10),
		rawPoint(a[6]), rawPoint(a[7]),
	})
	samePoints(t, "dev-2 after first compaction", rangeOf("dev-2"), []store.HealthPoint{
		bucketPoint(hour0, h, 5, 15),
		rawPoint(b[2]),
	})
	// Raw samples newer than the cutoff are untouched.
	latest, err := s.LatestHealth(ctx, "dev-1")
	ok(t, err, "LatestHealth")
	same(t, "LatestHealth after compaction", latest, a[7])

	// A range query sees buckets by their start.
	pts, err := s.HealthRange(ctx, "dev-1", hour0.Add(h), hour0.Add(2*h+30*time.Minute))
	ok(t, err, "HealthRange(part)")
	samePoints(t, "partial range", pts, []store.HealthPoint{
		bucketPoint(hour0.Add(h), h, 40, 80),
		bucketPoint(hour0.Add(2*h), h, 10),
	})

	// Second compaction folds 7 and 8 into the existing 2h bucket: the
	// average is over all three samples (40), not of the two averages.
	// dev-2's sample 3 is folded into a new bucket.
	compact(hour0.Add(3*h), longAgo, 3)
	samePoints(t, "dev-1 after second compaction", rangeOf("dev-1"), []store.HealthPoint{
		bucketPoint(hour0, h, 10, 20, 60),
		bucketPoint(hour0.Add(h), h, 40, 80),
		bucketPoint(hour0.Add(2*h), h, 10, 20, 90),
	})
	samePoints(t, "dev-2 after second compaction", rangeOf("dev-2"), []store.HealthPoint{
		bucketPoint(hour0, h, 5, 15),
		bucketPoint(hour0.Add(2*h), h, 50),
	})
	_, err = s.LatestHealth(ctx, "dev-1")
	wantErr(t, err, store.ErrNotFound, "LatestHealth after everything was compacted")

	// New raw samples sit beside the buckets, and a bucket sorts before a
	// raw sample at its start.
	late := []store.HealthSample{sample(20, 2*h, 70), sample(21, 3*h+5*time.Minute, 30)}
	add("dev-1", late...)
	samePoints(t, "dev-1 with new raw samples", rangeOf("dev-1"), []store.HealthPoint{
		bucketPoint(hour0, h, 10, 20, 60),
		bucketPoint(hour0.Add(h), h, 40, 80),
		bucketPoint(hour0.Add(2*h), h, 10, 20, 90),
		rawPoint(late[0]),
		rawPoint(late[1]),
	})
	// And the third compaction merges the late 2h sample too.
	compact(hour0.Add(3*h), longAgo, 1)
	samePoints(t, "dev-1 after third compaction", rangeOf("dev-1"), []store.HealthPoint{
		bucketPoint(hour0, h, 10, 20, 60),
		bucketPoint(hour0.Add(h), h, 40, 80),
		bucketPoint(hour0.Add(2*h), h, 10, 20, 90, 70),
		rawPoint(late[1]),
	})

	// Nothing older than the cutoff: nothing folded.
	compact(hour0.Add(3*h), longAgo, 0)
}

func testHealthCompactDrop(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok(t, s.CreateDevice(ctx, fullDevice("dev-1")), "CreateDevice")
	const h = time.Hour
	var hs []store.HealthSample
	for i := range 6 {
		hs = append(hs, sample(uint64(i), time.Duration(i)*h+30*time.Minute, float64(10*i)))
	}
	_, err := s.AddHealthSamples(ctx, "dev-1", hs)
	ok(t, err, "AddHealthSamples")

	// Fold hours 0-3, keep 4-5 raw; drop buckets starting before hour 2.
	n, err := s.CompactHealth(ctx, hour0.Add(4*h), h, hour0.Add(2*h))
	ok(t, err, "CompactHealth")
	if n != 4 {
		t.Fatalf("CompactHealth folded %d, want 4", n)
	}
	pts, err := s.HealthRange(ctx, "dev-1", hour0.Add(-h), hour0.Add(10*h))
	ok(t, err, "HealthRange")
	samePoints(t, "after compaction with drop", pts, []store.HealthPoint{
		bucketPoint(hour0.Add(2*h), h, 20),
		bucketPoint(hour0.Add(3*h), h, 30),
		rawPoint(hs[4]), rawPoint(hs[5]),
	})

	// Dropping only: a bucket starting exactly at dropBefore stays.
	n, err = s.CompactHealth(ctx, hour0, h, hour0.Add(3*h))
	ok(t, err, "CompactHealth(drop only)")
	if n != 0 {
		t.Fatalf("CompactHealth(drop only) folded %d, want 0", n)
	}
	pts, err = s.HealthRange(ctx, "dev-1", hour0.Add(-h), hour0.Add(10*h))
	ok(t, err, "HealthRange")
	samePoints(t, "after drop", pts, []store.HealthPoint{
		bucketPoint(hour0.Add(3*h), h, 30),
		rawPoint(hs[4]), rawPoint(hs[5]),
	})
}
