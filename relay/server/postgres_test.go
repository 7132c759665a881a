package server_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// TestRelayOnPostgres runs a relay whose Database is PostgreSQL (a fresh
// schema; skipped without a server unless CI=true), enrolls an agent and
// finds its inventory in the database, then starts a second relay on the
// same database, as a scaled-out deployment would, and sees the device
// there too.
func TestRelayOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	onPG := servertest.Options{Database: dsn}
	r := servertest.Start(t, onPG)
	if _, ok := r.Srv.Store().(*postgres.Store); !ok {
		t.Fatalf("relay with Database %q uses a %T", postgres.Redact(dsn), r.Srv.Store())
	}

	st := r.Enroll(t, "pg-host")
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, HealthInterval: 100 * time.Millisecond, Hostname: "pg-host",
	})

	// Read back through a store of the test's own on the same database,
	// not through the relay.
	ctx := t.Context()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		inv, err := db.GetInventory(ctx, st.DeviceID)
		if err != nil {
			return err
		}
		if len(inv.Data) == 0 {
			return fmt.Errorf("empty inventory stored")
		}
		if _, err := db.LatestHealth(ctx, st.DeviceID); err != nil {
			return err
		}
		return nil
	})
	d, err := db.GetDevice(ctx, st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleInventory()
	if d.Hostname != "pg-host" || d.MemoryBytes != want.GetMemory().GetTotalBytes() || d.Model != "Acme Desk 3000" ||
		d.CPUModel != want.GetCpu().GetModel() || d.DiskTotalBytes != 100<<30 {
		t.Errorf("stored device %+v does not match the agent's hello and inventory", d)
	}
	events, err := db.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	enrolled := false
	for _, e := range events {
		enrolled = enrolled || (e.Action == "device.enroll" && e.Target == st.DeviceID)
	}
	if !enrolled {
		t.Errorf("no device.enroll audit event in the database: %+v", events)
	}

	// A second relay on the same database: no migration to apply, no admin
	// to create, and the console there shows the device with its inventory.
	onPG.AuditKeyFile = filepath.Join(r.Dir, audit.KeyFile) // copied, like the CA
	r2 := servertest.Start(t, onPG)
	cs, cctx := r2.Admin(t)
	got, err := cs.GetDevice(cctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if err != nil {
		t.Fatalf("second relay: GetDevice: %v", err)
	}
	if got.GetInventory().GetMemory().GetTotalBytes() != want.GetMemory().GetTotalBytes() {
		t.Errorf("second relay shows inventory %v", got.GetInventory())
	}
	if n, err := db.CountTechnicians(ctx); err != nil || n != 1 {
		t.Errorf("%d technicians after two relays started (%v), want the one admin", n, err)
	}
}
