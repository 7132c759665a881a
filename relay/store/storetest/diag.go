package storetest

import (
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var diagTests = []subtest{
	{"DevicePolicy", testDevicePolicy},
	{"Groups", testGroups},
	{"CheckReports", testCheckReports},
	{"QueuedCommands", testQueuedCommands},
	{"RelaySettings", testRelaySettings},
}

func testGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.SetDeviceGroup(ctx, "nope", "g"), store.ErrNotFound, "SetDeviceGroup(unknown)")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-1")), "CreateDevice")
	d, err := s.GetDevice(ctx, "dev-1")
	ok(t, err, "GetDevice")
	same(t, "group at creation", d.Group, "front-desk")
	ok(t, s.SetDeviceGroup(ctx, "dev-1", "finance"), "SetDeviceGroup")
	d, err = s.GetDevice(ctx, "dev-1")
	ok(t, err, "GetDevice")
	same(t, "group", d.Group, "finance")
	ok(t, s.SetDeviceGroup(ctx, "dev-1", ""), "SetDeviceGroup(none)")
	d, _ = s.GetDevice(ctx, "dev-1")
	same(t, "group cleared", d.Group, "")

	_, err = s.GetGroupSettings(ctx, "finance")
	wantErr(t, err, store.ErrNotFound, "GetGroupSettings(unset)")
	ok(t, s.PutGroupSettings(ctx, "finance", []byte("v1")), "PutGroupSettings")
	ok(t, s.PutGroupSettings(ctx, "finance", []byte("v2")), "PutGroupSettings(replace)")
	got, err := s.GetGroupSettings(ctx, "finance")
	ok(t, err, "GetGroupSettings")
	same(t, "settings", string(got), "v2")
}

func testCheckReports(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.AddCheckReport(ctx, store.CheckReport{DeviceID: "nope", Time: t0, Data: []byte("x")})
	wantErr(t, err, store.ErrNotFound, "AddCheckReport(unknown device)")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-1")), "CreateDevice")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-2")), "CreateDevice")
	var ids []int64
	for i := range 3 {
		id, err := s.AddCheckReport(ctx, store.CheckReport{DeviceID: "dev-1", Time: t0.Add(time.Duration(i) * time.Minute),
			Technician: "tech", Overall: i + 1, Data: []byte{byte(i)}})
		ok(t, err, "AddCheckReport %d", i)
		ids = append(ids, id)
	}
	_, err = s.AddCheckReport(ctx, store.CheckReport{DeviceID: "dev-2", Time: t0, Technician: "x", Data: []byte("other")})
	ok(t, err, "AddCheckReport dev-2")
	got, err := s.ListCheckReports(ctx, "dev-1", 2)
	ok(t, err, "ListCheckReports")
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[1] {
		t.Fatalf("ListCheckReports newest first, limit 2: got %+v", got)
	}
	same(t, "report", got[0], store.CheckReport{ID: ids[2], DeviceID: "dev-1", Time: t0.Add(2 * time.Minute), Technician: "tech", Overall: 3, Data: []byte{2}})
	all, err := s.ListCheckReports(ctx, "dev-1", 0)
	ok(t, err, "ListCheckReports(all)")
	same(t, "count", len(all), 3)
}

func testQueuedCommands(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.QueueCommand(ctx, store.QueuedCommand{DeviceID: "nope", Created: t0, Expires: t0.Add(time.Hour), Data: []byte("x")})
	wantErr(t, err, store.ErrNotFound, "QueueCommand(unknown device)")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-1")), "CreateDevice")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-2")), "CreateDevice")
	q := func(dev, data string, exp time.Duration) int64 {
		id, err := s.QueueCommand(ctx, store.QueuedCommand{DeviceID: dev, Technician: "tech", Created: t0, Expires: t0.Add(exp), Data: []byte(data)})
		ok(t, err, "QueueCommand")
		return id
	}
	a := q("dev-1", "a", time.Hour)
	q("dev-1", "expired", time.Minute)
	b := q("dev-1", "b", 2*time.Hour)
	q("dev-2", "other", time.Hour)

	got, err := s.TakeQueuedCommands(ctx, "dev-1", t0.Add(10*time.Minute))
	ok(t, err, "TakeQueuedCommands")
	if len(got) != 2 || got[0].ID != a || got[1].ID != b || string(got[0].Data) != "a" || string(got[1].Data) != "b" {
		t.Fatalf("took %+v, want a then b (expired left out)", got)
	}
	same(t, "expires", got[0].Expires, t0.Add(time.Hour))
	again, err := s.TakeQueuedCommands(ctx, "dev-1", t0)
	ok(t, err, "TakeQueuedCommands again")
	same(t, "second take", len(again), 0)
	other, _ := s.TakeQueuedCommands(ctx, "dev-2", t0)
	same(t, "other device untouched", len(other), 1)
}

func testDevicePolicy(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.SetDevicePolicy(ctx, "nope", true, 1), store.ErrNotFound, "SetDevicePolicy(unknown)")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-1")), "CreateDevice")
	d, _ := s.GetDevice(ctx, "dev-1")
	same(t, "default policy", [2]any{d.UnattendedAllowed, d.MaxSessions}, [2]any{false, 0})
	ok(t, s.SetDevicePolicy(ctx, "dev-1", true, 3), "SetDevicePolicy")
	d, _ = s.GetDevice(ctx, "dev-1")
	same(t, "policy", [2]any{d.UnattendedAllowed, d.MaxSessions}, [2]any{true, 3})
}

// testRelaySettings: relay-wide settings are kept by name, replaced whole,
// kept apart from group settings of the same name, and any bytes survive.
func testRelaySettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetRelaySetting(ctx, "org.revocations")
	wantErr(t, err, store.ErrNotFound, "GetRelaySetting(unset)")
	ok(t, s.PutRelaySetting(ctx, "org.revocations", []byte{0, 1, 0xff}), "PutRelaySetting")
	ok(t, s.PutRelaySetting(ctx, "org.revocations", []byte{2, 0}), "PutRelaySetting(again)")
	got, err := s.GetRelaySetting(ctx, "org.revocations")
	ok(t, err, "GetRelaySetting")
	same(t, "relay setting", got, []byte{2, 0})
	_, err = s.GetGroupSettings(ctx, "org.revocations")
	wantErr(t, err, store.ErrNotFound, "GetGroupSettings(a relay setting's name)")
}
