package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var deviceTests = []subtest{
	{"CreateGet", testDeviceCreateGet},
	{"ListFilters", testDeviceListFilters},
	{"ListInvalid", testDeviceListInvalid},
	{"ListGroups", testDeviceListGroups},
	{"Paging", testDevicePaging},
	{"OffsetPaging", testDeviceOffsetPaging},
	{"Connected", testDeviceConnected},
	{"SetOfflineTouch", testDeviceSetOfflineTouch},
	{"MarkAllOffline", testDeviceMarkAllOffline},
	{"Revoke", testDeviceRevoke},
	{"OSFilter", testDeviceOSFilter},
	{"Reenroll", testDeviceReenroll},
	{"DiskFreeAsDf", testDeviceDiskFreeAsDf},
	{"CertRenewal", testDeviceCertRenewal},
	{"EndpointTrust", testDeviceEndpointTrust},
}

func ptr[T any](v T) *T { return &v }

// fullDevice has every field set, with values that catch lossy storage.
func fullDevice(id string) store.Device {
	return store.Device{
		ID:            id,
		Hostname:      "PC-" + id,
		AgentVersion:  "1.4.2",
		OS:            "Windows 11 Pro 24H2",
		Arch:          "amd64",
		CertSerial:    "7f:3a:" + id,
		PendingSerial: "8e:1b:" + id,
		MachineID:     "mid-" + id,
		FirstSeen:     t0,
		LastSeen:      t0.Add(90*time.Minute + 7),
		Online:        true,
		Revoked:       false,
		Group:         "front-desk",
		EndpointTrust: []byte{0x0a, 0x00, 0xff, 0x00},
		DeviceSummary: store.DeviceSummary{
			Model:          "ThinkPad X1 Carbon Gen 12",
			CPUModel:       "Intel(R) Core(TM) Ultra 7 155U",
			MemoryBytes:    math.MaxUint64, // above MaxInt64: must survive
			DiskTotalBytes: 1 << 40,
			DiskUsedBytes:  1<<40 - 123456789012 - 1<<30, // 1 GiB reserved
			DiskFreeBytes:  123456789012,
			User:           `CORP\alice`,
			OSName:         "Microsoft Windows 11 Pro",
			OSVersion:      "10.0.26100.2314",
			OSFamily:       "Standalone Workstation",
			OSDisplay:      "Windows 11 Pro",
		},
	}
}

func testDeviceCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()

	_, err := s.GetDevice(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetDevice(unknown)")

	d := fullDevice("dev-1")
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	same(t, "GetDevice", got, d)

	dup := fullDevice("dev-1")
	dup.Hostname = "other"
	wantErr(t, s.CreateDevice(ctx, dup), store.ErrExists, "CreateDevice(duplicate id)")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice after duplicate")
	same(t, "GetDevice after duplicate", got, d)

	// Zero values round-trip as zero.
	z := store.Device{ID: "dev-zero"}
	ok(t, s.CreateDevice(ctx, z), "CreateDevice(zero)")
	got, err = s.GetDevice(ctx, z.ID)
	ok(t, err, "GetDevice(zero)")
	same(t, "GetDevice(zero)", got, z)
	if !got.FirstSeen.IsZero() || !got.LastSeen.IsZero() || !got.RevokedAt.IsZero() {
		t.Errorf("zero times came back as %v, %v, %v", got.FirstSeen, got.LastSeen, got.RevokedAt)
	}

	// A revoked device is stored as such.
	r := fullDevice("dev-rev")
	r.Revoked, r.RevokedAt, r.Online = true, t0.Add(time.Hour), false
	ok(t, s.CreateDevice(ctx, r), "CreateDevice(revoked)")
	got, err = s.GetDevice(ctx, r.ID)
	ok(t, err, "GetDevice(revoked)")
	same(t, "GetDevice(revoked)", got, r)
}

const gib = 1 << 30

// filterFleet is the fixture of the filter and sort tests. Its default
// order (case-insensitive hostname, then id) is
// d01 d09 d02 d03 d04 d06 d05 d07 [d08, revoked].
//
// The summaries cover the edges of the numeric filters: unknown memory and
// disk (zero, d04), a known free space on an unknown volume size (d07), a
// full disk (d03), values exactly at the thresholds (d02: 8 GiB, 10 % free;
// d08: 1 % free), and uint64 values above MaxInt64 (d05, d09), which must
// compare as unsigned. Text values differ in case so that case-sensitive
// ordering shows.
var filterFleet = []struct {
	id, host, os    string
	online, revoked bool
	user, model     string
	cpu             string
	mem             uint64
	diskTotal       uint64
	diskFree        uint64
	lastSeen        time.Duration // after t0; 0 means never (the zero time)
}{
	{"d01", "alpha", "Windows 11 Pro", true, false, `CORP\alice`, "ThinkPad X1 Carbon Gen 12", "Intel Core Ultra 7 155U", 16 * gib, 1e12, 5e11, 5 * time.Hour},
	{"d02", "ALPHA-2", "windows 10", false, false, "bob", "OptiPlex 7010", "Intel Core i5-13500", 8 * gib, 512e9, 51.2e9, 1 * time.Hour},
	{"d03", "bravo_lab", "Ubuntu 24.04", true, false, "Alice", "thinkpad T14", "AMD Ryzen 7 PRO", 4 * gib, 256e9, 0, 3 * time.Hour},
	{"d04", "BravoXlab", "ubuntu 22.04", false, false, "carol_x", "OptiPlex 7010", "intel core i5-13500", 0, 0, 0, 0},
	{"d05", "charlie100", "macOS 15", true, false, "dave", "MacBook Pro", "Apple M3", math.MaxUint64, math.MaxUint64, 1<<63 + 1<<62, 4 * time.Hour},
	{"d06", "charlie10%", "macOS 14", false, false, "", "Mac mini", "Apple M2", 8*gib - 1, 1000, 99, 2 * time.Hour},
	{"d07", `delta\dev`, "Debian 12", true, false, "eve%", "Custom_Build", "AMD EPYC 9124", 32 * gib, 0, 123, 6 * time.Hour},
	{"d08", "echo", "Windows 11 Pro", true, true, "mallory", "ThinkPad X1 Carbon Gen 12", "Intel Core Ultra 7 155U", 2 * gib, 100, 1, 7 * time.Hour},
	{"d09", "Alpha", "FreeBSD 14", false, false, "ALICE", "", "", 1 << 63, 1<<63 + 1<<62, 1 << 59, 2 * time.Hour},
}

func createFilterFleet(t *testing.T, s store.Store) {
	t.Helper()
	for _, f := range filterFleet {
		d := store.Device{
			ID: f.id, Hostname: f.host, OS: f.os, Online: f.online, Revoked: f.revoked, FirstSeen: t0,
			DeviceSummary: store.DeviceSummary{
				Model: f.model, CPUModel: f.cpu, MemoryBytes: f.mem,
				DiskTotalBytes: f.diskTotal, DiskFreeBytes: f.diskFree, User: f.user,
			},
		}
		if f.diskTotal >= f.diskFree {
			// No reserved blocks: free/(used+free) is free/total.
			d.DiskUsedBytes = f.diskTotal - f.diskFree
		}
		if f.lastSeen != 0 {
			d.LastSeen = t0.Add(f.lastSeen)
		}
		if f.revoked {
			d.RevokedAt = t0
		}
		ok(t, s.CreateDevice(t.Context(), d), "CreateDevice(%s)", f.id)
	}
}

func testDeviceListFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	createFilterFleet(t, s)

	tests := []struct {
		name   string
		filter store.DeviceFilter
		want   []string
	}{
		{"all", store.DeviceFilter{}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07"}},
		{"include revoked", store.DeviceFilter{IncludeRevoked: true}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07", "d08"}},
		{"hostname substring", store.DeviceFilter{Hostname: "lph"}, []string{"d01", "d09", "d02"}},
		{"hostname other case", store.DeviceFilter{Hostname: "ALPHA"}, []string{"d01", "d09", "d02"}},
		{"hostname exact", store.DeviceFilter{Hostname: "alpha-2"}, []string{"d02"}},
		{"hostname underscore is literal", store.DeviceFilter{Hostname: "_"}, []string{"d03"}},
		{"hostname o_l is literal", store.DeviceFilter{Hostname: "o_l"}, []string{"d03"}},
		{"hostname percent is literal", store.DeviceFilter{Hostname: "%"}, []string{"d06"}},
		{"hostname 10% is literal", store.DeviceFilter{Hostname: "10%"}, []string{"d06"}},
		{"hostname backslash is literal", store.DeviceFilter{Hostname: `\`}, []string{"d07"}},
		{"hostname with backslash", store.DeviceFilter{Hostname: `a\d`}, []string{"d07"}},
		{"hostname no match", store.DeviceFilter{Hostname: "zulu"}, nil},
		{"os", store.DeviceFilter{OS: "windows"}, []string{"d01", "d02"}},
		{"os other case with revoked", store.DeviceFilter{OS: "WINDOWS", IncludeRevoked: true}, []string{"d01", "d02", "d08"}},
		{"os underscore is literal", store.DeviceFilter{OS: "_"}, nil},
		{"online", store.DeviceFilter{Online: ptr(true)}, []string{"d01", "d03", "d05", "d07"}},
		{"offline", store.DeviceFilter{Online: ptr(false)}, []string{"d09", "d02", "d04", "d06"}},
		{"online with revoked", store.DeviceFilter{Online: ptr(true), IncludeRevoked: true}, []string{"d01", "d03", "d05", "d07", "d08"}},
		{"online and os", store.DeviceFilter{Online: ptr(true), OS: "ubuntu"}, []string{"d03"}},
		{"hostname and offline", store.DeviceFilter{Hostname: "charlie", Online: ptr(false)}, []string{"d06"}},
		{"hostname and os", store.DeviceFilter{Hostname: "a", OS: "14"}, []string{"d09", "d06"}},
		{"revoked only by hostname", store.DeviceFilter{Hostname: "echo"}, nil},
		{"revoked by hostname included", store.DeviceFilter{Hostname: "echo", IncludeRevoked: true}, []string{"d08"}},

		{"user substring", store.DeviceFilter{User: "alice"}, []string{"d01", "d09", "d03"}},
		{"user other case", store.DeviceFilter{User: "BOB"}, []string{"d02"}},
		{"user underscore is literal", store.DeviceFilter{User: "_"}, []string{"d04"}},
		{"user percent is literal", store.DeviceFilter{User: "%"}, []string{"d07"}},
		{"user backslash is literal", store.DeviceFilter{User: `p\a`}, []string{"d01"}},
		{"user of a revoked device", store.DeviceFilter{User: "mallory"}, nil},
		{"user of a revoked device included", store.DeviceFilter{User: "mallory", IncludeRevoked: true}, []string{"d08"}},
		{"model substring", store.DeviceFilter{Model: "optiplex"}, []string{"d02", "d04"}},
		{"model other case", store.DeviceFilter{Model: "THINKPAD"}, []string{"d01", "d03"}},
		{"model underscore is literal", store.DeviceFilter{Model: "_"}, []string{"d07"}},
		{"model percent is literal", store.DeviceFilter{Model: "%"}, nil},
		{"model backslash is literal", store.DeviceFilter{Model: `\`}, nil},

		{"query hostname", store.DeviceFilter{Query: "alpha"}, []string{"d01", "d09", "d02"}},
		{"query user", store.DeviceFilter{Query: "ALICE"}, []string{"d01", "d09", "d03"}},
		{"query os", store.DeviceFilter{Query: "ubuntu"}, []string{"d03", "d04"}},
		{"query model", store.DeviceFilter{Query: "optiplex"}, []string{"d02", "d04"}},
		{"query id", store.DeviceFilter{Query: "d07"}, []string{"d07"}},
		{"query id other case", store.DeviceFilter{Query: "D0"}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07"}},
		{"query os or model", store.DeviceFilter{Query: "mac"}, []string{"d06", "d05"}},
		{"query does not search the cpu", store.DeviceFilter{Query: "ryzen"}, nil},
		{"query does not span fields", store.DeviceFilter{Query: "alphawindows"}, nil},
		{"query underscore is literal", store.DeviceFilter{Query: "_"}, []string{"d03", "d04", "d07"}},
		{"query percent is literal", store.DeviceFilter{Query: "%"}, []string{"d06", "d07"}},
		{"query backslash is literal", store.DeviceFilter{Query: `\`}, []string{"d01", "d07"}},
		{"query revoked", store.DeviceFilter{Query: "mallory"}, nil},
		{"query revoked included", store.DeviceFilter{Query: "mallory", IncludeRevoked: true}, []string{"d08"}},

		// Unknown memory (zero) never matches; the bound is exclusive.
		{"memory below 8 GiB", store.DeviceFilter{MemoryBelow: 8 * gib}, []string{"d03", "d06"}},
		{"memory below 8 GiB + 1", store.DeviceFilter{MemoryBelow: 8*gib + 1}, []string{"d02", "d03", "d06"}},
		{"memory below 1", store.DeviceFilter{MemoryBelow: 1}, nil},
		{"memory below 4 GiB with revoked", store.DeviceFilter{MemoryBelow: 4 * gib, IncludeRevoked: true}, []string{"d08"}},
		{"memory below 2^63", store.DeviceFilter{MemoryBelow: 1 << 63}, []string{"d01", "d02", "d03", "d06", "d07"}},
		{"memory below 2^63 + 1", store.DeviceFilter{MemoryBelow: 1<<63 + 1}, []string{"d01", "d09", "d02", "d03", "d06", "d07"}},
		{"memory below max uint64", store.DeviceFilter{MemoryBelow: math.MaxUint64}, []string{"d01", "d09", "d02", "d03", "d06", "d07"}},

		// An unknown volume size (zero) never matches, whatever the free
		// space; the bound is exclusive.
		{"disk free below 10%", store.DeviceFilter{DiskFreeBelowPercent: 10}, []string{"d09", "d03", "d06"}},
		{"disk free below 10.5%", store.DeviceFilter{DiskFreeBelowPercent: 10.5}, []string{"d09", "d02", "d03", "d06"}},
		{"disk free below 0.5%", store.DeviceFilter{DiskFreeBelowPercent: 0.5}, []string{"d03"}},
		{"disk free below 1% with revoked", store.DeviceFilter{DiskFreeBelowPercent: 1, IncludeRevoked: true}, []string{"d03"}},
		{"disk free below 1.5% with revoked", store.DeviceFilter{DiskFreeBelowPercent: 1.5, IncludeRevoked: true}, []string{"d03", "d08"}},
		{"disk free below 100%", store.DeviceFilter{DiskFreeBelowPercent: 100}, []string{"d01", "d09", "d02", "d03", "d06", "d05"}},

		{"model, offline and memory", store.DeviceFilter{Model: "optiplex", Online: ptr(false), MemoryBelow: 16 * gib}, []string{"d02"}},
		{"disk, memory and offline", store.DeviceFilter{DiskFreeBelowPercent: 10, MemoryBelow: 8 * gib, Online: ptr(false)}, []string{"d06"}},
		{"user and disk by memory descending", store.DeviceFilter{User: "alice", DiskFreeBelowPercent: 10, Sort: store.SortMemory, Descending: true}, []string{"d09", "d03"}},
		{"query, os and memory by disk free", store.DeviceFilter{Query: "a", OS: "mac", MemoryBelow: 1 << 40, Sort: store.SortDiskFree}, []string{"d06"}},
		{"hostname, online and user by user descending", store.DeviceFilter{Hostname: "a", Online: ptr(true), User: "ali", Sort: store.SortUser, Descending: true}, []string{"d01", "d03"}},
		{"query and model by last seen", store.DeviceFilter{Query: "in", Model: "a", Sort: store.SortLastSeen}, []string{"d06", "d03", "d01"}},

		// Orderings: text case-insensitively, uint64 as unsigned, ties by
		// id; Descending reverses the whole order, tie-break included.
		{"sort default", store.DeviceFilter{Sort: ""}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07"}},
		{"sort hostname", store.DeviceFilter{Sort: store.SortHostname}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07"}},
		{"sort hostname descending", store.DeviceFilter{Sort: store.SortHostname, Descending: true}, []string{"d07", "d05", "d06", "d04", "d03", "d02", "d09", "d01"}},
		{"sort default descending", store.DeviceFilter{Descending: true}, []string{"d07", "d05", "d06", "d04", "d03", "d02", "d09", "d01"}},
		{"sort last seen", store.DeviceFilter{Sort: store.SortLastSeen}, []string{"d04", "d02", "d06", "d09", "d03", "d05", "d01", "d07"}},
		{"sort last seen descending", store.DeviceFilter{Sort: store.SortLastSeen, Descending: true}, []string{"d07", "d01", "d05", "d03", "d09", "d06", "d02", "d04"}},
		{"sort last seen with revoked", store.DeviceFilter{Sort: store.SortLastSeen, IncludeRevoked: true}, []string{"d04", "d02", "d06", "d09", "d03", "d05", "d01", "d07", "d08"}},
		{"sort os", store.DeviceFilter{Sort: store.SortOS}, []string{"d07", "d09", "d06", "d05", "d04", "d03", "d02", "d01"}},
		{"sort os descending", store.DeviceFilter{Sort: store.SortOS, Descending: true}, []string{"d01", "d02", "d03", "d04", "d05", "d06", "d09", "d07"}},
		{"sort model", store.DeviceFilter{Sort: store.SortModel}, []string{"d09", "d07", "d06", "d05", "d02", "d04", "d03", "d01"}},
		{"sort model descending", store.DeviceFilter{Sort: store.SortModel, Descending: true}, []string{"d01", "d03", "d04", "d02", "d05", "d06", "d07", "d09"}},
		{"sort cpu", store.DeviceFilter{Sort: store.SortCPU}, []string{"d09", "d07", "d03", "d06", "d05", "d02", "d04", "d01"}},
		{"sort cpu descending", store.DeviceFilter{Sort: store.SortCPU, Descending: true}, []string{"d01", "d04", "d02", "d05", "d06", "d03", "d07", "d09"}},
		{"sort memory", store.DeviceFilter{Sort: store.SortMemory}, []string{"d04", "d03", "d06", "d02", "d01", "d07", "d09", "d05"}},
		{"sort memory descending", store.DeviceFilter{Sort: store.SortMemory, Descending: true}, []string{"d05", "d09", "d07", "d01", "d02", "d06", "d03", "d04"}},
		{"sort disk free", store.DeviceFilter{Sort: store.SortDiskFree}, []string{"d03", "d04", "d06", "d07", "d02", "d01", "d09", "d05"}},
		{"sort disk free descending", store.DeviceFilter{Sort: store.SortDiskFree, Descending: true}, []string{"d05", "d09", "d01", "d02", "d07", "d06", "d04", "d03"}},
		{"sort user", store.DeviceFilter{Sort: store.SortUser}, []string{"d06", "d03", "d09", "d02", "d04", "d01", "d05", "d07"}},
		{"sort user descending", store.DeviceFilter{Sort: store.SortUser, Descending: true}, []string{"d07", "d05", "d01", "d04", "d02", "d09", "d03", "d06"}},
		{"sort online", store.DeviceFilter{Sort: store.SortOnline}, []string{"d02", "d04", "d06", "d09", "d01", "d03", "d05", "d07"}},
		{"sort online descending", store.DeviceFilter{Sort: store.SortOnline, Descending: true}, []string{"d07", "d05", "d03", "d01", "d09", "d06", "d04", "d02"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devs, total, err := s.ListDevices(ctx, tc.filter)
			ok(t, err, "ListDevices(%+v)", tc.filter)
			if got := deviceIDs(devs); !slices.Equal(got, tc.want) {
				t.Errorf("ListDevices(%+v) = %v, want %v", tc.filter, got, tc.want)
			}
			if total != int64(len(tc.want)) {
				t.Errorf("ListDevices(%+v) total = %d, want %d", tc.filter, total, len(tc.want))
			}

			// With an offset and a limit, the page is that window of
			// the same order and the total does not change.
			n := len(tc.want)
			for _, p := range []struct{ offset, limit int }{{0, 2}, {1, 2}, {n - 1, 2}, {2, 0}, {n, 0}, {n + 3, 2}} {
				if p.offset < 0 {
					continue
				}
				f := tc.filter
				f.Offset, f.Limit = p.offset, p.limit
				devs, total, err = s.ListDevices(ctx, f)
				ok(t, err, "ListDevices(%+v)", f)
				want := tc.want[min(p.offset, n):]
				if p.limit > 0 {
					want = want[:min(p.limit, len(want))]
				}
				if got := deviceIDs(devs); !slices.Equal(got, want) {
					t.Errorf("ListDevices(%+v) = %v, want %v", f, got, want)
				}
				if total != int64(n) {
					t.Errorf("ListDevices(%+v) total = %d, want %d", f, total, n)
				}
			}
		})
	}

	// Listed devices carry all their fields.
	devs, _, err := s.ListDevices(ctx, store.DeviceFilter{Hostname: "delta"})
	ok(t, err, "ListDevices")
	want, err := s.GetDevice(ctx, "d07")
	ok(t, err, "GetDevice")
	same(t, "listed device", devs, []store.Device{want})
}

// testDeviceListInvalid checks the filters ListDevices refuses: keyset
// paging in any order but hostname ascending, an unknown sort, a negative
// offset and a disk percentage that is negative or NaN.
func testDeviceListInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	createFilterFleet(t, s)

	for _, tc := range []struct {
		name    string
		filter  store.DeviceFilter
		mention string // the error names this
	}{
		{"after key, sort memory", store.DeviceFilter{Sort: store.SortMemory, AfterHostname: "alpha", AfterID: "d01"}, ""},
		{"after id only, sort last seen", store.DeviceFilter{Sort: store.SortLastSeen, AfterID: "d01"}, ""},
		{"after key, hostname descending", store.DeviceFilter{Sort: store.SortHostname, Descending: true, AfterHostname: "alpha", AfterID: "d01"}, ""},
		{"after key, default sort descending", store.DeviceFilter{Descending: true, AfterHostname: "alpha"}, ""},
		{"after key with offset, sort online", store.DeviceFilter{Sort: store.SortOnline, AfterHostname: "alpha", Offset: 2, Limit: 2}, ""},
		{"unknown sort", store.DeviceFilter{Sort: "bogus-column"}, "bogus-column"},
		{"sort in the wrong case", store.DeviceFilter{Sort: "Hostname"}, "Hostname"},
		{"unknown sort descending with filters", store.DeviceFilter{Sort: "size", Descending: true, Hostname: "a"}, "size"},
		{"negative offset", store.DeviceFilter{Offset: -1, Limit: 2}, ""},
		{"negative disk percentage", store.DeviceFilter{DiskFreeBelowPercent: -1}, ""},
		{"NaN disk percentage", store.DeviceFilter{DiskFreeBelowPercent: math.NaN()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devs, total, err := s.ListDevices(ctx, tc.filter)
			if err == nil {
				t.Fatalf("ListDevices(%+v) = %v (total %d), want an error", tc.filter, deviceIDs(devs), total)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("ListDevices(%+v) error %q does not name %q", tc.filter, err, tc.mention)
			}
			if len(devs) != 0 || total != 0 {
				t.Errorf("ListDevices(%+v) failed but returned %v (total %d)", tc.filter, deviceIDs(devs), total)
			}
		})
	}

	// The same keys are fine in hostname order, ascending, named or by
	// default, and so is an offset after them.
	for _, f := range []store.DeviceFilter{
		{AfterHostname: "alpha", AfterID: "d01"},
		{Sort: store.SortHostname, AfterHostname: "alpha", AfterID: "d01"},
		{Sort: store.SortHostname, AfterHostname: "alpha", AfterID: "d01", Offset: 1, Limit: 2},
	} {
		devs, total, err := s.ListDevices(ctx, f)
		ok(t, err, "ListDevices(%+v)", f)
		want := []string{"d09", "d02", "d03", "d04", "d06", "d05", "d07"}
		if f.Offset > 0 {
			want = want[f.Offset : f.Offset+f.Limit]
		}
		if got := deviceIDs(devs); !slices.Equal(got, want) || total != 8 {
			t.Errorf("ListDevices(%+v) = %v (total %d), want %v (8)", f, got, total, want)
		}
	}
}

// testDeviceListGroups checks DeviceFilter.Groups: nil matches every
// group (and none), a non-nil slice only those groups, exactly, and an
// empty non-nil slice nothing; it combines with the other filters, paging
// and keyset paging.
func testDeviceListGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	createFilterFleet(t, s)
	for id, g := range map[string]string{
		"d01": "front-desk", "d02": "front-desk", "d03": "lab", "d04": "Lab",
		"d05": "lab-2", "d08": "lab", // d08 is revoked
	} {
		ok(t, s.SetDeviceGroup(ctx, id, g), "SetDeviceGroup(%s, %q)", id, g)
	}
	tests := []struct {
		name   string
		filter store.DeviceFilter
		want   []string
	}{
		{"nil is every group", store.DeviceFilter{}, []string{"d01", "d09", "d02", "d03", "d04", "d06", "d05", "d07"}},
		{"empty matches nothing", store.DeviceFilter{Groups: []string{}}, nil},
		{"one group", store.DeviceFilter{Groups: []string{"front-desk"}}, []string{"d01", "d02"}},
		{"exact, case-sensitive", store.DeviceFilter{Groups: []string{"lab"}}, []string{"d03"}},
		{"not a prefix or pattern", store.DeviceFilter{Groups: []string{"lab%", "front"}}, nil},
		{"two groups", store.DeviceFilter{Groups: []string{"lab", "front-desk"}}, []string{"d01", "d02", "d03"}},
		{"revoked included", store.DeviceFilter{Groups: []string{"lab"}, IncludeRevoked: true}, []string{"d03", "d08"}},
		{"unknown group", store.DeviceFilter{Groups: []string{"nobody"}}, nil},
		{"with another filter", store.DeviceFilter{Groups: []string{"front-desk", "lab"}, OS: "windows"}, []string{"d01", "d02"}},
		{"descending", store.DeviceFilter{Groups: []string{"front-desk", "lab", "Lab"}, Descending: true}, []string{"d04", "d03", "d02", "d01"}},
		{"paged", store.DeviceFilter{Groups: []string{"front-desk", "lab", "Lab"}, Offset: 1, Limit: 2}, []string{"d02", "d03"}},
		{"keyset", store.DeviceFilter{Groups: []string{"front-desk", "lab", "Lab"}, AfterHostname: "alpha-2", AfterID: "d02"}, []string{"d03", "d04"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devs, _, err := s.ListDevices(ctx, tc.filter)
			ok(t, err, "ListDevices(%+v)", tc.filter)
			if got := deviceIDs(devs); !slices.Equal(got, tc.want) {
				t.Errorf("ListDevices(%+v) = %v, want %v", tc.filter, got, tc.want)
			}
		})
	}
	// The total counts the group's devices, not the page.
	_, total, err := s.ListDevices(ctx, store.DeviceFilter{Groups: []string{"front-desk", "lab"}, Limit: 1})
	ok(t, err, "ListDevices by groups")
	if total != 3 {
		t.Errorf("ListDevices(front-desk, lab; limit 1) total = %d, want 3", total)
	}
}

func deviceIDs(devs []store.Device) []string {
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.ID)
	}
	return ids
}

// lessDevice is the documented list order: hostname case-insensitively,
// then id.
func lessDevice(a, b store.Device) int {
	if c := strings.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname)); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func testDevicePaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 57
	prefixes := []string{"Node", "node", "NODE", "web", "Web", "db"}
	var all []store.Device
	for i := range n {
		d := store.Device{
			// Ids are not in hostname order; hostnames repeat, some
			// differing only in case, so the id tie-break matters.
			ID:       fmt.Sprintf("dev-%03d", (i*37)%n),
			Hostname: fmt.Sprintf("%s-%02d", prefixes[i%len(prefixes)], i%5),
			Online:   i%3 == 0,
		}
		ok(t, s.CreateDevice(ctx, d), "CreateDevice(%s)", d.ID)
		all = append(all, d)
	}
	// A revoked device in the middle of the order must not disturb paging.
	ok(t, s.CreateDevice(ctx, store.Device{ID: "dev-rev", Hostname: "node-02", Revoked: true}), "CreateDevice(revoked)")
	slices.SortFunc(all, lessDevice)

	tests := []struct {
		name   string
		filter store.DeviceFilter
		match  func(store.Device) bool
	}{
		{"all", store.DeviceFilter{}, func(store.Device) bool { return true }},
		{"hostname", store.DeviceFilter{Hostname: "WEB"}, func(d store.Device) bool {
			return strings.Contains(strings.ToLower(d.Hostname), "web")
		}},
		{"online", store.DeviceFilter{Online: ptr(true)}, func(d store.Device) bool { return d.Online }},
	}
	for _, tc := range tests {
		var want []string
		for _, d := range all {
			if tc.match(d) {
				want = append(want, d.ID)
			}
		}

		// No limit: everything in one page.
		devs, total, err := s.ListDevices(ctx, tc.filter)
		ok(t, err, "%s: ListDevices", tc.name)
		if got := deviceIDs(devs); !slices.Equal(got, want) {
			t.Fatalf("%s: ListDevices = %v, want %v", tc.name, got, want)
		}
		if total != int64(len(want)) {
			t.Fatalf("%s: total = %d, want %d", tc.name, total, len(want))
		}

		for _, limit := range []int{1, 7, 10, len(want), len(want) + 1} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				var got []string
				f := tc.filter
				f.Limit = limit
				for page := 0; ; page++ {
					if page > len(want)+1 {
						t.Fatalf("paging does not end; got %v", got)
					}
					devs, total, err := s.ListDevices(ctx, f)
					ok(t, err, "ListDevices(%+v)", f)
					if total != int64(len(want)) {
						t.Fatalf("page %d: total = %d, want %d", page, total, len(want))
					}
					if len(devs) > limit {
						t.Fatalf("page %d has %d devices, limit %d", page, len(devs), limit)
					}
					if len(devs) == 0 {
						break
					}
					got = append(got, deviceIDs(devs)...)
					last := devs[len(devs)-1]
					f.AfterHostname, f.AfterID = last.Hostname, last.ID
				}
				if !slices.Equal(got, want) {
					t.Fatalf("pages = %v, want %v", got, want)
				}
			})
		}
	}

	// The After key need not be an existing device: paging resumes at the
	// next key even if the device it came from has changed.
	devs, _, err := s.ListDevices(ctx, store.DeviceFilter{AfterHostname: "NODE-04", AfterID: "dev-9", Limit: 100})
	ok(t, err, "ListDevices(after a missing key)")
	var want []string
	for _, d := range all {
		if lessDevice(d, store.Device{Hostname: "node-04", ID: "dev-9"}) > 0 {
			want = append(want, d.ID)
		}
	}
	if got := deviceIDs(devs); !slices.Equal(got, want) {
		t.Fatalf("ListDevices(after a missing key) = %v, want %v", got, want)
	}
}

// compareDevices is the documented order of a sort: text
// case-insensitively (ASCII), numbers as unsigned, last seen oldest first,
// offline before online; then id; all reversed for descending.
func compareDevices(by store.DeviceSort, descending bool) func(a, b store.Device) int {
	text := func(f func(store.Device) string) func(a, b store.Device) int {
		return func(a, b store.Device) int { return strings.Compare(strings.ToLower(f(a)), strings.ToLower(f(b))) }
	}
	var key func(a, b store.Device) int
	switch by {
	case "", store.SortHostname:
		key = text(func(d store.Device) string { return d.Hostname })
	case store.SortLastSeen:
		key = func(a, b store.Device) int { return a.LastSeen.Compare(b.LastSeen) }
	case store.SortOS:
		// The name shown (empty until an inventory), then the agent's OS.
		display, os := text(func(d store.Device) string { return d.OSDisplay }), text(func(d store.Device) string { return d.OS })
		key = func(a, b store.Device) int { return cmp.Or(display(a, b), os(a, b)) }
	case store.SortModel:
		key = text(func(d store.Device) string { return d.Model })
	case store.SortCPU:
		key = text(func(d store.Device) string { return d.CPUModel })
	case store.SortMemory:
		key = func(a, b store.Device) int { return cmp.Compare(a.MemoryBytes, b.MemoryBytes) }
	case store.SortDiskFree:
		key = func(a, b store.Device) int { return cmp.Compare(a.DiskFreeBytes, b.DiskFreeBytes) }
	case store.SortUser:
		key = text(func(d store.Device) string { return d.User })
	case store.SortOnline:
		key = func(a, b store.Device) int { return cmp.Compare(b2i(a.Online), b2i(b.Online)) }
	default:
		panic("unknown sort " + by)
	}
	return func(a, b store.Device) int {
		c := key(a, b)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if descending {
			c = -c
		}
		return c
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var allSorts = []store.DeviceSort{
	store.SortHostname, store.SortLastSeen, store.SortOS, store.SortModel, store.SortCPU,
	store.SortMemory, store.SortDiskFree, store.SortUser, store.SortOnline,
}

// testDeviceOffsetPaging pages with Offset through every ordering in both
// directions, over a fleet whose sort keys repeat (so the id tie-break
// decides) and include uint64 values above MaxInt64: each device must come
// exactly once, in order.
func testDeviceOffsetPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 41
	users := []string{"alice", "ALICE", "Bob", "bob", "", "carol"}
	models := []string{"OptiPlex 7010", "optiplex 7010", "ThinkPad", "", "Mac mini"}
	cpus := []string{"Intel Core i5", "AMD Ryzen 7", "intel core i5", "Apple M2"}
	oses := []string{"Windows 11 Pro", "windows 11 pro", "Ubuntu 24.04", "macOS 15"}
	mems := []uint64{0, 8 * gib, 16 * gib, 8 * gib, math.MaxUint64, 1 << 63, 4 * gib}
	var all []store.Device
	for i := range n {
		d := store.Device{
			ID:       fmt.Sprintf("dev-%03d", (i*17)%n),
			Hostname: fmt.Sprintf("host-%02d", i%7),
			OS:       oses[i%len(oses)],
			Online:   i%3 == 0,
			DeviceSummary: store.DeviceSummary{
				Model:          models[i%len(models)],
				CPUModel:       cpus[i%len(cpus)],
				MemoryBytes:    mems[i%len(mems)],
				DiskTotalBytes: 1 << 40,
				DiskFreeBytes:  []uint64{0, 1 << 30, 1 << 63, 1 << 30, 5 << 30}[i%5],
				User:           users[i%len(users)],
				OSDisplay:      []string{"", "Debian 12.11", "debian 12.11", "Ubuntu 24.04", ""}[i%5],
			},
		}
		if i%4 != 0 {
			d.LastSeen = t0.Add(time.Duration(i%5) * time.Minute)
		}
		ok(t, s.CreateDevice(ctx, d), "CreateDevice(%s)", d.ID)
		all = append(all, d)
	}
	ok(t, s.CreateDevice(ctx, store.Device{ID: "dev-rev", Hostname: "host-03", Revoked: true, DeviceSummary: store.DeviceSummary{MemoryBytes: 8 * gib}}), "CreateDevice(revoked)")

	filters := []struct {
		name   string
		filter store.DeviceFilter
		match  func(store.Device) bool
	}{
		{"all", store.DeviceFilter{}, func(store.Device) bool { return true }},
		{"online", store.DeviceFilter{Online: ptr(true)}, func(d store.Device) bool { return d.Online }},
		{"memory below 2^63+1", store.DeviceFilter{MemoryBelow: 1<<63 + 1}, func(d store.Device) bool {
			return d.MemoryBytes > 0 && d.MemoryBytes < 1<<63+1
		}},
	}
	for _, by := range allSorts {
		for _, desc := range []bool{false, true} {
			for _, fc := range filters {
				var want []string
				sorted := slices.Clone(all)
				slices.SortFunc(sorted, compareDevices(by, desc))
				for _, d := range sorted {
					if fc.match(d) {
						want = append(want, d.ID)
					}
				}
				limits := []int{7, len(want) + 1}
				if by == store.SortMemory && desc {
					limits = append(limits, 1)
				}
				for _, limit := range limits {
					t.Run(fmt.Sprintf("%s/descending=%v/%s/limit=%d", by, desc, fc.name, limit), func(t *testing.T) {
						f := fc.filter
						f.Sort, f.Descending, f.Limit = by, desc, limit
						var got []string
						for page := 0; ; page++ {
							if page > len(want)+1 {
								t.Fatalf("paging does not end; got %v", got)
							}
							devs, total, err := s.ListDevices(ctx, f)
							ok(t, err, "ListDevices(%+v)", f)
							if total != int64(len(want)) {
								t.Fatalf("page %d: total = %d, want %d", page, total, len(want))
							}
							if len(devs) > limit {
								t.Fatalf("page %d has %d devices, limit %d", page, len(devs), limit)
							}
							if len(devs) == 0 {
								break
							}
							got = append(got, deviceIDs(devs)...)
							f.Offset += len(devs)
						}
						if !slices.Equal(got, want) {
							t.Fatalf("pages = %v, want %v", got, want)
						}
					})
				}
			}
		}
	}
}

func testDeviceConnected(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	d.Online = false
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	other := fullDevice("dev-2")
	ok(t, s.CreateDevice(ctx, other), "CreateDevice")

	h := store.DeviceHello{ID: d.ID, Hostname: "renamed", AgentVersion: "1.5.0", OS: "Windows 11 Pro 25H2", Arch: "arm64", At: t0.Add(48 * time.Hour)}
	ok(t, s.DeviceConnected(ctx, h), "DeviceConnected")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	want := d
	want.Hostname, want.AgentVersion, want.OS, want.Arch = h.Hostname, h.AgentVersion, h.OS, h.Arch
	want.Online, want.LastSeen = true, h.At
	same(t, "after DeviceConnected", got, want)

	got, err = s.GetDevice(ctx, other.ID)
	ok(t, err, "GetDevice(other)")
	same(t, "other device after DeviceConnected", got, other)

	wantErr(t, s.DeviceConnected(ctx, store.DeviceHello{ID: "nope", Hostname: "x", At: t0}), store.ErrNotFound, "DeviceConnected(unknown)")
	_, err = s.GetDevice(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetDevice after DeviceConnected(unknown)")
}

func testDeviceSetOfflineTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")

	touched := t0.Add(2*time.Hour + 3)
	ok(t, s.TouchDevice(ctx, d.ID, touched), "TouchDevice")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	want := d
	want.LastSeen = touched
	same(t, "after TouchDevice", got, want)

	off := t0.Add(3 * time.Hour)
	ok(t, s.SetOffline(ctx, d.ID, off, time.Time{}), "SetOffline")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	want.Online, want.LastSeen = false, off
	same(t, "after SetOffline", got, want)

	// Touch does not bring a device online.
	ok(t, s.TouchDevice(ctx, d.ID, off.Add(time.Second)), "TouchDevice")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.Online {
		t.Errorf("TouchDevice brought the device online")
	}

	wantErr(t, s.TouchDevice(ctx, "nope", t0), store.ErrNotFound, "TouchDevice(unknown)")
	wantErr(t, s.SetOffline(ctx, "nope", t0, time.Time{}), store.ErrNotFound, "SetOffline(unknown)")
	wantErr(t, s.SetOffline(ctx, "nope", t0, t0), store.ErrNotFound, "SetOffline(unknown, connectedAt)")

	// Two streams: the one that connected first ends after the second
	// connected (another relay); the device stays online until the second
	// ends.
	first, second := t0.Add(4*time.Hour), t0.Add(5*time.Hour)
	ok(t, s.DeviceConnected(ctx, store.DeviceHello{ID: d.ID, Hostname: d.Hostname, At: first}), "DeviceConnected(first)")
	ok(t, s.DeviceConnected(ctx, store.DeviceHello{ID: d.ID, Hostname: d.Hostname, At: second}), "DeviceConnected(second)")
	ok(t, s.SetOffline(ctx, d.ID, second.Add(time.Second), first), "SetOffline(first stream)")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if !got.Online || !got.LastSeen.Equal(second) {
		t.Errorf("after the older stream ended: online %v, last seen %v; want online, %v", got.Online, got.LastSeen, second)
	}
	ok(t, s.SetOffline(ctx, d.ID, second.Add(time.Minute), second), "SetOffline(second stream)")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.Online || !got.LastSeen.Equal(second.Add(time.Minute)) {
		t.Errorf("after the current stream ended: online %v, last seen %v; want offline at %v", got.Online, got.LastSeen, second.Add(time.Minute))
	}
}

func testDeviceMarkAllOffline(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.MarkAllOffline(ctx)
	ok(t, err, "MarkAllOffline(empty)")
	if n != 0 {
		t.Errorf("MarkAllOffline(empty) = %d, want 0", n)
	}
	for i := range 5 {
		d := fullDevice(fmt.Sprintf("dev-%d", i))
		d.Online = i < 3
		ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	}
	// A revoked, online device counts too.
	r := fullDevice("dev-rev")
	r.Online, r.Revoked, r.RevokedAt = true, true, t0
	ok(t, s.CreateDevice(ctx, r), "CreateDevice(revoked)")

	n, err = s.MarkAllOffline(ctx)
	ok(t, err, "MarkAllOffline")
	if n != 4 {
		t.Errorf("MarkAllOffline = %d, want 4", n)
	}
	devs, total, err := s.ListDevices(ctx, store.DeviceFilter{Online: ptr(true), IncludeRevoked: true})
	ok(t, err, "ListDevices(online)")
	if total != 0 || len(devs) != 0 {
		t.Errorf("online after MarkAllOffline: %v (total %d)", deviceIDs(devs), total)
	}
	got, err := s.GetDevice(ctx, "dev-0")
	ok(t, err, "GetDevice")
	if !got.LastSeen.Equal(fullDevice("dev-0").LastSeen) {
		t.Errorf("MarkAllOffline changed LastSeen to %v", got.LastSeen)
	}

	n, err = s.MarkAllOffline(ctx)
	ok(t, err, "MarkAllOffline again")
	if n != 0 {
		t.Errorf("MarkAllOffline again = %d, want 0", n)
	}
}

func testDeviceRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-2")), "CreateDevice")

	at := t0.Add(5*time.Hour + 11)
	ok(t, s.RevokeDevice(ctx, d.ID, at), "RevokeDevice")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice(revoked)")
	if !got.Revoked || !got.RevokedAt.Equal(at) {
		t.Errorf("after RevokeDevice: Revoked=%v RevokedAt=%v, want true %v", got.Revoked, got.RevokedAt, at)
	}
	want := d
	want.Revoked, want.RevokedAt = true, at
	want.Online = got.Online // revocation may or may not mark it offline
	same(t, "after RevokeDevice", got, want)

	devs, total, err := s.ListDevices(ctx, store.DeviceFilter{})
	ok(t, err, "ListDevices")
	if ids := deviceIDs(devs); !slices.Equal(ids, []string{"dev-2"}) || total != 1 {
		t.Errorf("ListDevices = %v (total %d), want [dev-2] (1)", ids, total)
	}
	devs, total, err = s.ListDevices(ctx, store.DeviceFilter{IncludeRevoked: true})
	ok(t, err, "ListDevices(IncludeRevoked)")
	if ids := deviceIDs(devs); !slices.Equal(ids, []string{"dev-1", "dev-2"}) || total != 2 {
		t.Errorf("ListDevices(IncludeRevoked) = %v (total %d), want [dev-1 dev-2] (2)", ids, total)
	}

	// Revoking again succeeds and the device stays revoked.
	ok(t, s.RevokeDevice(ctx, d.ID, at.Add(time.Hour)), "RevokeDevice again")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if !got.Revoked {
		t.Errorf("device not revoked after second RevokeDevice")
	}

	wantErr(t, s.RevokeDevice(ctx, "nope", at), store.ErrNotFound, "RevokeDevice(unknown)")
}

// testDeviceOSFilter checks that the OS filter and the query search the
// inventory's OS columns as well as the agent's OS: distribution, version,
// family and display name.
func testDeviceOSFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	debian := store.Device{ID: "deb", Hostname: "deb", OS: "linux", FirstSeen: t0, DeviceSummary: store.DeviceSummary{
		OSName: "Debian GNU/Linux", OSVersion: "12.11", OSFamily: "debian", OSDisplay: "Debian 12.11"}}
	ubuntu := store.Device{ID: "ubu", Hostname: "ubu", OS: "linux", FirstSeen: t0, DeviceSummary: store.DeviceSummary{
		OSName: "Ubuntu", OSVersion: "24.04", OSFamily: "debian", OSDisplay: "Ubuntu 24.04"}}
	mac := store.Device{ID: "mac", Hostname: "mac", OS: "darwin", FirstSeen: t0, DeviceSummary: store.DeviceSummary{
		OSName: "macOS", OSVersion: "15.1", OSFamily: "Standalone Workstation", OSDisplay: "macOS 15.1"}}
	bare := store.Device{ID: "new", Hostname: "new", OS: "linux", FirstSeen: t0} // no inventory yet
	for _, d := range []store.Device{debian, ubuntu, mac, bare} {
		ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	}
	// The summary columns also come with an inventory.
	ok(t, s.PutInventory(ctx, store.Inventory{DeviceID: "deb", CollectedAt: t0, ReceivedAt: t0}, debian.DeviceSummary, nil), "PutInventory")
	got, err := s.GetDevice(ctx, "deb")
	ok(t, err, "GetDevice")
	same(t, "OS columns after PutInventory", got.DeviceSummary, debian.DeviceSummary)

	for _, tc := range []struct {
		os   string
		want []string
	}{
		{"debian", []string{"deb", "ubu"}}, // Ubuntu's family is debian
		{"Debian 12", []string{"deb"}},
		{"12.11", []string{"deb"}},
		{"DEBIAN GNU", []string{"deb"}},
		{"linux", []string{"deb", "new", "ubu"}},
		{"ubuntu", []string{"ubu"}},
		{"macos 15", []string{"mac"}},
		{"darwin", []string{"mac"}},
		{"windows", nil},
	} {
		devs, _, err := s.ListDevices(ctx, store.DeviceFilter{OS: tc.os})
		ok(t, err, "ListDevices")
		if ids := deviceIDs(devs); !slices.Equal(ids, tc.want) {
			t.Errorf("OS %q matched %v, want %v", tc.os, ids, tc.want)
		}
		devs, _, err = s.ListDevices(ctx, store.DeviceFilter{Query: tc.os})
		ok(t, err, "ListDevices")
		if ids := deviceIDs(devs); !slices.Equal(ids, tc.want) {
			t.Errorf("query %q matched %v, want %v", tc.os, ids, tc.want)
		}
	}
}

// testDeviceReenroll checks DeviceByMachineID and EnrollDevice: enrolling
// again the offline device that has the machine id, with the serial read,
// replaces its certificate, keeps its history and group and drops
// unattended access; a stale serial, an online or revoked device, or a
// machine id that is not the device's is ErrExists; a new machine id, or
// none, creates a device; a revoked device's machine enrolls anew.
func testDeviceReenroll(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := fullDevice("dev-1")
	first.Online = false
	_, err := s.DeviceByMachineID(ctx, first.MachineID)
	wantErr(t, err, store.ErrNotFound, "DeviceByMachineID(unknown)")
	got, replaced, err := s.EnrollDevice(ctx, first, "")
	ok(t, err, "EnrollDevice(new)")
	if replaced {
		t.Errorf("first enrollment replaced a device")
	}
	same(t, "EnrollDevice(new)", got, first)
	found, err := s.DeviceByMachineID(ctx, first.MachineID)
	ok(t, err, "DeviceByMachineID")
	same(t, "DeviceByMachineID", found, first)
	ok(t, s.SetDeviceGroup(ctx, first.ID, "lab"), "SetDeviceGroup")
	ok(t, s.SetDevicePolicy(ctx, first.ID, true, 3), "SetDevicePolicy")

	// The same machine under another id, with no serial: refused.
	other := store.Device{ID: "dev-2", Hostname: "renamed", OS: "linux", CertSerial: "serial-x",
		MachineID: first.MachineID, FirstSeen: t0.Add(time.Hour)}
	_, _, err = s.EnrollDevice(ctx, other, "")
	wantErr(t, err, store.ErrExists, "EnrollDevice(same machine, other id)")
	if _, err := s.GetDevice(ctx, "dev-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused enrollment created dev-2 (%v)", err)
	}

	again := store.Device{ID: first.ID, Hostname: "renamed", AgentVersion: "2.0.0", OS: "linux", CertSerial: "serial-2",
		MachineID: first.MachineID, FirstSeen: t0.Add(time.Hour), LastSeen: t0.Add(time.Hour)}
	// A serial that is not the device's (another enrollment came first).
	_, _, err = s.EnrollDevice(ctx, again, "not-the-serial")
	wantErr(t, err, store.ErrExists, "EnrollDevice(stale serial)")
	// The device is online (a clone, or a machine id read by someone else).
	ok(t, s.DeviceConnected(ctx, store.DeviceHello{ID: first.ID, Hostname: first.Hostname, OS: "linux", At: t0.Add(time.Minute)}), "DeviceConnected")
	_, _, err = s.EnrollDevice(ctx, again, first.CertSerial)
	wantErr(t, err, store.ErrExists, "EnrollDevice(online device)")
	ok(t, s.SetOffline(ctx, first.ID, t0.Add(2*time.Minute), time.Time{}), "SetOffline")

	got, replaced, err = s.EnrollDevice(ctx, again, first.CertSerial)
	ok(t, err, "EnrollDevice(same machine)")
	want, err := s.GetDevice(ctx, first.ID)
	ok(t, err, "GetDevice")
	if !replaced {
		t.Errorf("EnrollDevice(same machine) did not replace the device")
	}
	same(t, "EnrollDevice(same machine) result", got, want)
	if want.CertSerial != "serial-2" || want.Hostname != "renamed" || want.AgentVersion != "2.0.0" ||
		want.Group != "lab" || want.UnattendedAllowed || want.MaxSessions != 3 || !want.FirstSeen.Equal(first.FirstSeen) {
		t.Errorf("re-enrolled device %+v: want the new serial, hostname and version, the old group, sessions and first seen, no unattended access", want)
	}
	// Twice with the serial read before the first: the second loses.
	again2 := again
	again2.CertSerial = "serial-3"
	_, _, err = s.EnrollDevice(ctx, again2, first.CertSerial)
	wantErr(t, err, store.ErrExists, "EnrollDevice(concurrent re-enrollment)")

	// Another machine, and no machine id at all: new devices.
	for _, d := range []store.Device{fullDevice("dev-3"), {ID: "dev-4", Hostname: "h", FirstSeen: t0}, {ID: "dev-5", Hostname: "h", FirstSeen: t0}} {
		if _, replaced, err := s.EnrollDevice(ctx, d, ""); err != nil || replaced {
			t.Errorf("EnrollDevice(%s) replaced %v, %v; want a new device", d.ID, replaced, err)
		}
	}
	_, err = s.DeviceByMachineID(ctx, "")
	wantErr(t, err, store.ErrNotFound, "DeviceByMachineID(\"\")")
	// A revoked device is not revived: its machine enrolls as a new device.
	ok(t, s.RevokeDevice(ctx, first.ID, t0.Add(2*time.Hour)), "RevokeDevice")
	_, err = s.DeviceByMachineID(ctx, first.MachineID)
	wantErr(t, err, store.ErrNotFound, "DeviceByMachineID(revoked)")
	_, _, err = s.EnrollDevice(ctx, again2, "serial-2")
	wantErr(t, err, store.ErrExists, "EnrollDevice(revoked device)")
	third := again
	third.ID, third.CertSerial = "dev-6", "serial-6"
	if got, replaced, err := s.EnrollDevice(ctx, third, ""); err != nil || replaced || got.ID != "dev-6" {
		t.Errorf("EnrollDevice after revocation = %s, replaced %v, %v; want the new dev-6", got.ID, replaced, err)
	}
	// A taken id is ErrExists, as with CreateDevice.
	_, _, err = s.EnrollDevice(ctx, store.Device{ID: "dev-3", Hostname: "x", FirstSeen: t0}, "")
	wantErr(t, err, store.ErrExists, "EnrollDevice(taken id)")
}

// testDeviceDiskFreeAsDf checks that DiskFreeBelowPercent measures free
// space as df does, against used plus available, so root's reserved
// blocks count neither as free nor as used; and that PutInventory and
// GetDevice keep the used bytes.
func testDeviceDiskFreeAsDf(t *testing.T, s store.Store) {
	ctx := t.Context()
	// 1000 bytes, 100 reserved: df says 800 used, 100 available, Use% 89 %
	// (free 11.1 %), although only 10 % of the size is free.
	reserved := store.Device{ID: "res", Hostname: "res", OS: "linux", FirstSeen: t0}
	// No reserved blocks: 10 % free either way.
	plain := store.Device{ID: "pla", Hostname: "pla", OS: "linux", FirstSeen: t0}
	for _, d := range []store.Device{reserved, plain} {
		ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	}
	reserved.DeviceSummary = store.DeviceSummary{DiskTotalBytes: 1000, DiskUsedBytes: 800, DiskFreeBytes: 100}
	plain.DeviceSummary = store.DeviceSummary{DiskTotalBytes: 1000, DiskUsedBytes: 900, DiskFreeBytes: 100}
	for _, d := range []store.Device{reserved, plain} {
		ok(t, s.PutInventory(ctx, store.Inventory{DeviceID: d.ID, CollectedAt: t0, ReceivedAt: t0}, d.DeviceSummary, nil), "PutInventory")
		got, err := s.GetDevice(ctx, d.ID)
		ok(t, err, "GetDevice")
		same(t, "disk columns after PutInventory", got.DeviceSummary, d.DeviceSummary)
	}
	for _, tc := range []struct {
		below float64
		want  []string
	}{
		{10, nil},
		{10.5, []string{"pla"}},
		{11, []string{"pla"}},
		{11.2, []string{"pla", "res"}},
	} {
		devs, _, err := s.ListDevices(ctx, store.DeviceFilter{DiskFreeBelowPercent: tc.below})
		ok(t, err, "ListDevices")
		if ids := deviceIDs(devs); !slices.Equal(ids, tc.want) {
			t.Errorf("disk free below %v%% matched %v, want %v", tc.below, ids, tc.want)
		}
	}
}

// testDeviceCertRenewal: a pending serial is recorded only against the
// current serial, becomes current only when confirmed with it, and
// re-enrollment and revocation end it.
func testDeviceCertRenewal(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	d.PendingSerial, d.Online = "", false
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	wantErr(t, s.SetPendingSerial(ctx, d.ID, "not-current", "p1"), store.ErrNotFound, "SetPendingSerial(old current)")
	wantErr(t, s.SetPendingSerial(ctx, "dev-unknown", d.CertSerial, "p1"), store.ErrNotFound, "SetPendingSerial(unknown)")
	ok(t, s.SetPendingSerial(ctx, d.ID, d.CertSerial, "p1"), "SetPendingSerial")
	// A second renewal before confirmation replaces the pending serial.
	ok(t, s.SetPendingSerial(ctx, d.ID, d.CertSerial, "p2"), "SetPendingSerial(again)")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.CertSerial != d.CertSerial || got.PendingSerial != "p2" {
		t.Fatalf("after SetPendingSerial: current %q pending %q, want %q and p2", got.CertSerial, got.PendingSerial, d.CertSerial)
	}
	wantErr(t, s.ConfirmSerial(ctx, d.ID, "p1"), store.ErrNotFound, "ConfirmSerial(replaced pending)")
	wantErr(t, s.ConfirmSerial(ctx, d.ID, ""), store.ErrNotFound, "ConfirmSerial(empty)")
	ok(t, s.ConfirmSerial(ctx, d.ID, "p2"), "ConfirmSerial")
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.CertSerial != "p2" || got.PendingSerial != "" {
		t.Fatalf("after ConfirmSerial: current %q pending %q, want p2 and none", got.CertSerial, got.PendingSerial)
	}
	wantErr(t, s.ConfirmSerial(ctx, d.ID, "p2"), store.ErrNotFound, "ConfirmSerial(twice)")

	// Re-enrollment drops a pending serial.
	ok(t, s.SetPendingSerial(ctx, d.ID, "p2", "p3"), "SetPendingSerial")
	re := store.Device{ID: d.ID, Hostname: "h", CertSerial: "e1", MachineID: d.MachineID, FirstSeen: t0, LastSeen: t0}
	out, replaced, err := s.EnrollDevice(ctx, re, "p2")
	ok(t, err, "EnrollDevice")
	if !replaced || out.PendingSerial != "" {
		t.Fatalf("re-enrollment: replaced %v, pending %q", replaced, out.PendingSerial)
	}
	got, err = s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.CertSerial != "e1" || got.PendingSerial != "" {
		t.Fatalf("after re-enrollment: current %q pending %q, want e1 and none", got.CertSerial, got.PendingSerial)
	}
	// A revoked device is neither renewed nor confirmed.
	ok(t, s.SetPendingSerial(ctx, d.ID, "e1", "p4"), "SetPendingSerial")
	ok(t, s.RevokeDevice(ctx, d.ID, t0), "RevokeDevice")
	wantErr(t, s.ConfirmSerial(ctx, d.ID, "p4"), store.ErrNotFound, "ConfirmSerial(revoked)")
	wantErr(t, s.SetPendingSerial(ctx, d.ID, "e1", "p5"), store.ErrNotFound, "SetPendingSerial(revoked)")
}

// testDeviceEndpointTrust: the agent's endpoint trust report is nil until
// stored, round-trips byte for byte through Get and List, and can be
// replaced; an unknown device is ErrNotFound.
func testDeviceEndpointTrust(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	d.EndpointTrust = nil
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	got, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	if got.EndpointTrust != nil {
		t.Fatalf("endpoint trust before any report: %x, want nil", got.EndpointTrust)
	}
	wantErr(t, s.SetEndpointTrust(ctx, "dev-unknown", []byte{1}), store.ErrNotFound, "SetEndpointTrust(unknown)")
	for _, data := range [][]byte{{0x0a, 0x40, 0x00, 0xff}, bytes.Repeat([]byte{0x22, 0x03, 'l', 'a', 'b'}, 200)} {
		ok(t, s.SetEndpointTrust(ctx, d.ID, data), "SetEndpointTrust")
		got, err := s.GetDevice(ctx, d.ID)
		ok(t, err, "GetDevice")
		if !bytes.Equal(got.EndpointTrust, data) {
			t.Fatalf("GetDevice endpoint trust %x, want %x", got.EndpointTrust, data)
		}
		devs, _, err := s.ListDevices(ctx, store.DeviceFilter{})
		ok(t, err, "ListDevices")
		if len(devs) != 1 || !bytes.Equal(devs[0].EndpointTrust, data) {
			t.Fatalf("ListDevices endpoint trust %v", devs)
		}
	}
}
