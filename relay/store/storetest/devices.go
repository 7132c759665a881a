package storetest

import (
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
	{"Paging", testDevicePaging},
	{"Connected", testDeviceConnected},
	{"SetOfflineTouch", testDeviceSetOfflineTouch},
	{"MarkAllOffline", testDeviceMarkAllOffline},
	{"Revoke", testDeviceRevoke},
}

func ptr[T any](v T) *T { return &v }

// fullDevice has every field set, with values that catch lossy storage.
func fullDevice(id string) store.Device {
	return store.Device{
		ID:           id,
		Hostname:     "PC-" + id,
		AgentVersion: "1.4.2",
		OS:           "Windows 11 Pro 24H2",
		Arch:         "amd64",
		CertSerial:   "7f:3a:" + id,
		FirstSeen:    t0,
		LastSeen:     t0.Add(90*time.Minute + 7),
		Online:       true,
		Revoked:      false,
		DeviceSummary: store.DeviceSummary{
			Model:          "ThinkPad X1 Carbon Gen 12",
			CPUModel:       "Intel(R) Core(TM) Ultra 7 155U",
			MemoryBytes:    math.MaxUint64, // above MaxInt64: must survive
			DiskTotalBytes: 1 << 40,
			DiskFreeBytes:  123456789012,
			User:           `CORP\alice`,
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

// filterFleet is the fixture of the filter tests. Its sorted order
// (case-insensitive hostname, then id) is
// d01 d09 d02 d03 d04 d06 d05 d07 [d08, revoked].
var filterFleet = []struct {
	id, host, os    string
	online, revoked bool
}{
	{"d01", "alpha", "Windows 11 Pro", true, false},
	{"d02", "ALPHA-2", "windows 10", false, false},
	{"d03", "bravo_lab", "Ubuntu 24.04", true, false},
	{"d04", "BravoXlab", "ubuntu 22.04", false, false},
	{"d05", "charlie100", "macOS 15", true, false},
	{"d06", "charlie10%", "macOS 14", false, false},
	{"d07", `delta\dev`, "Debian 12", true, false},
	{"d08", "echo", "Windows 11 Pro", true, true},
	{"d09", "Alpha", "FreeBSD 14", false, false},
}

func testDeviceListFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, f := range filterFleet {
		d := store.Device{ID: f.id, Hostname: f.host, OS: f.os, Online: f.online, Revoked: f.revoked, FirstSeen: t0}
		if f.revoked {
			d.RevokedAt = t0
		}
		ok(t, s.CreateDevice(ctx, d), "CreateDevice(%s)", f.id)
	}

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

			// With a limit, the page shrinks and the total does not.
			f := tc.filter
			f.Limit = 2
			devs, total, err = s.ListDevices(ctx, f)
			ok(t, err, "ListDevices(%+v)", f)
			if got, want := deviceIDs(devs), tc.want[:min(2, len(tc.want))]; !slices.Equal(got, want) {
				t.Errorf("ListDevices(%+v) = %v, want %v", f, got, want)
			}
			if total != int64(len(tc.want)) {
				t.Errorf("ListDevices(%+v) total = %d, want %d", f, total, len(tc.want))
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
	ok(t, s.SetOffline(ctx, d.ID, off), "SetOffline")
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
	wantErr(t, s.SetOffline(ctx, "nope", t0), store.ErrNotFound, "SetOffline(unknown)")
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
