package storetest

import (
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var inventoryTests = []subtest{
	{"PutGet", testInventoryPutGet},
	{"History", testInventoryHistory},
}

func testInventoryPutGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	d := fullDevice("dev-1")
	d.DeviceSummary = store.DeviceSummary{}
	ok(t, s.CreateDevice(ctx, d), "CreateDevice")
	ok(t, s.CreateDevice(ctx, fullDevice("dev-2")), "CreateDevice")

	_, err := s.GetInventory(ctx, d.ID)
	wantErr(t, err, store.ErrNotFound, "GetInventory(no inventory yet)")
	_, err = s.GetInventory(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetInventory(unknown device)")

	inv1 := store.Inventory{DeviceID: d.ID, CollectedAt: t0, ReceivedAt: t0.Add(1500 * time.Millisecond), Data: []byte("inventory v1\x00\xff")}
	sum1 := store.DeviceSummary{Model: "OptiPlex 7010", CPUModel: "i5-13500", MemoryBytes: 16 << 30, DiskTotalBytes: 512 << 30, DiskUsedBytes: 400 << 30, DiskFreeBytes: 100 << 30, User: "alice"}
	ok(t, s.PutInventory(ctx, inv1, sum1, nil), "PutInventory v1")
	got, err := s.GetInventory(ctx, d.ID)
	ok(t, err, "GetInventory v1")
	same(t, "GetInventory v1", got, inv1)

	dev, err := s.GetDevice(ctx, d.ID)
	ok(t, err, "GetDevice")
	same(t, "summary after v1", dev.DeviceSummary, sum1)
	want := d
	want.DeviceSummary = sum1
	same(t, "device after v1", dev, want)

	// The summary columns show in the fleet list.
	devs, _, err := s.ListDevices(ctx, store.DeviceFilter{Hostname: d.Hostname})
	ok(t, err, "ListDevices")
	if len(devs) != 1 {
		t.Fatalf("ListDevices(%q) = %v", d.Hostname, deviceIDs(devs))
	}
	same(t, "listed summary after v1", devs[0].DeviceSummary, sum1)

	// A second put replaces the inventory and the summary.
	inv2 := store.Inventory{DeviceID: d.ID, CollectedAt: t0.Add(time.Hour), ReceivedAt: t0.Add(time.Hour + 3), Data: []byte("inventory v2")}
	sum2 := store.DeviceSummary{Model: "OptiPlex 7010", CPUModel: "i5-13500", MemoryBytes: 32 << 30, DiskTotalBytes: 1 << 40, DiskUsedBytes: 100 << 30, DiskFreeBytes: 900 << 30}
	ok(t, s.PutInventory(ctx, inv2, sum2, nil), "PutInventory v2")
	got, err = s.GetInventory(ctx, d.ID)
	ok(t, err, "GetInventory v2")
	same(t, "GetInventory v2", got, inv2)
	devs, _, err = s.ListDevices(ctx, store.DeviceFilter{Hostname: d.Hostname})
	ok(t, err, "ListDevices")
	same(t, "listed summary after v2", devs[0].DeviceSummary, sum2)

	// The other device is untouched.
	_, err = s.GetInventory(ctx, "dev-2")
	wantErr(t, err, store.ErrNotFound, "GetInventory(other device)")
	other, err := s.GetDevice(ctx, "dev-2")
	ok(t, err, "GetDevice(other)")
	same(t, "other device", other, fullDevice("dev-2"))

	// An empty inventory is allowed.
	inv3 := store.Inventory{DeviceID: d.ID, CollectedAt: t0.Add(2 * time.Hour), ReceivedAt: t0.Add(2 * time.Hour)}
	ok(t, s.PutInventory(ctx, inv3, sum2, nil), "PutInventory(empty)")
	got, err = s.GetInventory(ctx, d.ID)
	ok(t, err, "GetInventory(empty)")
	same(t, "GetInventory(empty)", got, inv3)

	// Unknown device: nothing is stored.
	bad := store.Inventory{DeviceID: "nope", CollectedAt: t0, ReceivedAt: t0, Data: []byte("x")}
	wantErr(t, s.PutInventory(ctx, bad, sum1, []store.InventoryChange{{DeviceID: "nope", Time: t0, Field: "f", To: "x"}}),
		store.ErrNotFound, "PutInventory(unknown device)")
	_, err = s.GetInventory(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetInventory after PutInventory(unknown device)")
	hist, err := s.InventoryHistory(ctx, "nope", 10)
	ok(t, err, "InventoryHistory(unknown device)")
	if len(hist) != 0 {
		t.Errorf("InventoryHistory(unknown device) = %+v, want none", hist)
	}
}

func testInventoryHistory(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"dev-1", "dev-2"} {
		ok(t, s.CreateDevice(ctx, fullDevice(id)), "CreateDevice")
	}
	hist, err := s.InventoryHistory(ctx, "dev-1", 10)
	ok(t, err, "InventoryHistory(none)")
	if len(hist) != 0 {
		t.Fatalf("InventoryHistory before any put = %+v", hist)
	}

	c := func(dev string, at time.Duration, field, from, to string) store.InventoryChange {
		return store.InventoryChange{DeviceID: dev, Time: t0.Add(at), Field: field, From: from, To: to}
	}
	c1 := c("dev-1", 0, "os.version", "", "11 23H2")
	c2 := c("dev-1", time.Second, "memory.total", "", "16 GiB")
	c3 := c("dev-1", time.Hour, "memory.total", "16 GiB", "32 GiB")
	c4 := c("dev-1", 2*time.Hour, "disk[0].model", "Samsung 980", "")
	c5 := c("dev-1", 2*time.Hour+1, "os.version", "11 23H2", "11 24H2")
	o1 := c("dev-2", 30*time.Minute, "user", "bob", "carol")

	put := func(dev string, at time.Duration, changes ...store.InventoryChange) {
		t.Helper()
		inv := store.Inventory{DeviceID: dev, CollectedAt: t0.Add(at), ReceivedAt: t0.Add(at), Data: []byte(dev)}
		ok(t, s.PutInventory(ctx, inv, store.DeviceSummary{Model: "m"}, changes), "PutInventory(%s)", dev)
	}
	put("dev-1", 0, c1, c2)
	put("dev-2", 30*time.Minute, o1)
	put("dev-1", time.Hour, c3)
	put("dev-1", 90*time.Minute) // no changes: history unchanged
	put("dev-1", 2*time.Hour, c4, c5)

	newestFirst := []store.InventoryChange{c5, c4, c3, c2, c1}
	for _, limit := range []int{1, 2, 3, 5, 6, 100} {
		hist, err := s.InventoryHistory(ctx, "dev-1", limit)
		ok(t, err, "InventoryHistory(limit %d)", limit)
		same(t, "InventoryHistory(dev-1)", hist, newestFirst[:min(limit, len(newestFirst))])
	}
	hist, err = s.InventoryHistory(ctx, "dev-2", 10)
	ok(t, err, "InventoryHistory(dev-2)")
	same(t, "InventoryHistory(dev-2)", hist, []store.InventoryChange{o1})
}
