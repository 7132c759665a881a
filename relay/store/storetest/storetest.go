// Package storetest is the conformance suite for store.Store backends.
// Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … return a new, empty store … })
//	}
//
// Besides what store.Store documents, the suite pins down the behaviour the
// rest of the relay relies on, so that every backend agrees:
//
//   - Times round-trip exactly, to the nanosecond (compared with Equal, so
//     the location may differ); the zero time round-trips as zero. uint64
//     values, including ones above math.MaxInt64, round-trip exactly.
//   - Nil and empty byte slices are interchangeable.
//   - ListDevices orders by hostname compared case-insensitively (ASCII
//     lower-casing, so "bravo_lab" sorts before "BravoXlab"), then by id;
//     AfterHostname/AfterID continue after that key. Hostname, OS, user,
//     model and query filters are case-insensitive substring matches in
//     which '%', '_' and '\' are ordinary characters; the query does not
//     match across fields, nor the CPU model. The OS filter and the query
//     search the agent's OS and the inventory's OS name, version, family
//     and display name ("debian", "Debian 12", "12.11" and "linux" all
//     match a Debian 12.11 machine).
//   - EnrollDevice with the machine id of a device that is not revoked
//     keeps that device (id, group, policy, first seen) and replaces its
//     certificate serial, hostname and agent version.
//   - The other orderings compare text the same way, memory and free disk
//     bytes as unsigned (values above MaxInt64 sort last ascending), last
//     seen with the zero time first; Descending reverses the whole order,
//     id tie-break included. Offset pages through any ordering.
//   - MemoryBelow and DiskFreeBelowPercent are strict bounds that never
//     match a zero (unknown) memory or volume size, and treat uint64 values
//     above MaxInt64 as unsigned.
//   - ListDevices fails, returning nothing, for AfterHostname/AfterID with
//     any order but hostname ascending, for an unknown Sort (the error
//     names it), a negative Offset, and a negative or NaN
//     DiskFreeBelowPercent.
//   - Updating an unknown device (DeviceConnected, SetOffline, TouchDevice,
//     PutInventory, AddHealthSamples) or technician (SetLoginState,
//     UpdateTechnician) fails with store.ErrNotFound; creating an enrollment
//     token or a session whose key is taken fails with store.ErrExists.
//   - ConsumeEnrollToken checks the secret before anything else (a wrong
//     secret on an expired or used token is ErrTokenUnknown and reveals
//     nothing), then expiry (a token is expired from ExpiresAt on), then
//     uses left; a failed attempt consumes nothing.
//   - Health buckets start at multiples of their width since the Unix epoch
//     (hourly buckets start on the hour, UTC), are reported with Time = the
//     bucket start and Bucket = the width, and a bucket is dropped when its
//     start is before dropBefore. A bucket sorts before a raw sample at the
//     same time.
//   - The first audit event has Seq 1 and PrevHash "".
//   - The outbox lists newest first; a claim takes due, unleased pending
//     items (oldest due first) and leases them, and concurrent claimers
//     never get the same item; only the lease owner finishes an item.
//   - Technicians list by name, byte-wise; no groups read back as nil.
//     EditTechnician, DeleteTechnician and the disabling of an admin keep
//     at least one enabled admin, also when admins remove each other
//     concurrently.
//   - Update states are one row per device: a put replaces that device's
//     row only (writers reporting different devices never lose each
//     other's), listings page by id compared byte-wise.
//
// The suite has no sleeps; concurrency tests start their goroutines behind
// one barrier and check the final state.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Run runs the conformance suite against the backend that open creates.
// open is called once per subtest and must return a new, empty store; Run
// closes it when the subtest ends (after that, open's own t.Cleanup
// functions run).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Devices", deviceTests},
		{"Inventory", inventoryTests},
		{"Health", healthTests},
		{"EnrollTokens", enrollTokenTests},
		{"Technicians", technicianTests},
		{"Accounts", accountTests},
		{"Sessions", sessionTests},
		{"Audit", auditTests},
		{"Diagnostics", diagTests},
		{"Tickets", ticketTests},
		{"KnowledgeBase", kbTests},
		{"Reports", reportTests},
		{"Outbox", outboxTests},
		{"Help", helpTests},
		{"UpdateStates", updateStateTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) {
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					st.fn(t, s)
				})
			}
		})
	}
}

type subtest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// t0 is the suite's reference time: not UTC, with nanoseconds, so that
// inexact time handling shows.
var t0 = time.Date(2026, time.March, 14, 9, 26, 53, 589793238, time.FixedZone("UTC+2", 2*60*60))

// hour0 is t0's hour, for health buckets.
var hour0 = t0.Truncate(time.Hour)

func ok(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func wantErr(t *testing.T, err, target error, what string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, target)
	}
}

// nt normalises a time for comparison: UTC, no monotonic reading, zero
// stays the zero value.
func nt(x time.Time) time.Time {
	if x.IsZero() {
		return time.Time{}
	}
	return x.UTC()
}

// nb normalises a byte slice for comparison: empty is nil.
func nb(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// normalize returns a copy of v with every time.Time and []byte inside
// normalised with nt and nb, and empty slices nil, so that
// reflect.DeepEqual compares values, not representations.
func normalize[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	normValue(rv)
	return v
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

func normValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(nt(v.Interface().(time.Time))))
	case v.Type() == bytesType:
		v.Set(reflect.ValueOf(nb(v.Bytes())))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			normValue(v.Field(i))
		}
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := range c.Len() {
			normValue(c.Index(i))
		}
		v.Set(c)
	}
}

// same fails the test unless got and want are equal after normalize.
func same[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// near reports whether a and b agree to a relative 1e-9 (float sums and
// averages may differ in the last bits between backends).
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// barrier starts n goroutines running fn at the same moment and waits for
// them; it returns their errors by index.
func barrier(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return errs
}

var storeTests = []subtest{
	{"CloseTwice", func(t *testing.T, s store.Store) {
		ok(t, s.Close(), "first Close")
		ok(t, s.Close(), "second Close")
	}},
	{"ConcurrentWriters", testConcurrentWriters},
}

// testConcurrentWriters runs different writes from many goroutines at once:
// none may fail (a single-writer backend must queue them, not report busy).
func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n, rounds = 8, 20
	for i := range n {
		ok(t, s.CreateDevice(ctx, store.Device{ID: fmt.Sprintf("cw-%d", i), Hostname: fmt.Sprintf("cw-%d", i)}), "create device")
	}
	errs := barrier(n, func(i int) error {
		id := fmt.Sprintf("cw-%d", i)
		for r := range rounds {
			at := t0.Add(time.Duration(r) * time.Second)
			samples := make([]store.HealthSample, 5)
			for k := range samples {
				samples[k] = store.HealthSample{ID: uint64(r*10 + k), Time: at.Add(time.Duration(k) * time.Millisecond), CPUPercent: float64(k)}
			}
			if got, err := s.AddHealthSamples(ctx, id, samples); err != nil || got != len(samples) {
				return fmt.Errorf("AddHealthSamples: %d, %v", got, err)
			}
			if err := s.TouchDevice(ctx, id, at); err != nil {
				return err
			}
			if _, err := s.AppendAudit(ctx, store.AuditEvent{Time: at, Actor: id, Action: "test"}, store.AuditHash); err != nil {
				return err
			}
			if err := s.CreateTechnician(ctx, store.Technician{Name: fmt.Sprintf("%s-%d", id, r), CreatedAt: at}); err != nil {
				return err
			}
			if _, _, err := s.ListDevices(ctx, store.DeviceFilter{Limit: 5}); err != nil {
				return err
			}
		}
		return nil
	})
	for i, err := range errs {
		ok(t, err, "writer %d", i)
	}
	count, err := s.CountTechnicians(ctx)
	ok(t, err, "CountTechnicians")
	if count != n*rounds {
		t.Errorf("CountTechnicians = %d, want %d", count, n*rounds)
	}
	verifyAuditChain(t, s, n*rounds)
	for i := range n {
		id := fmt.Sprintf("cw-%d", i)
		pts, err := s.HealthRange(ctx, id, t0.Add(-time.Hour), t0.Add(time.Hour))
		ok(t, err, "HealthRange")
		if len(pts) != 5*rounds {
			t.Errorf("%s has %d health points, want %d", id, len(pts), 5*rounds)
		}
	}
}
