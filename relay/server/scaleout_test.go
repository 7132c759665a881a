package server_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deskside/deskside/agent/command"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// TestScaleOut runs two relays as a scaled-out deployment does: one
// PostgreSQL database, one NATS, one CA. The agent is connected to relay A;
// a technician signed in on relay B sees changes made on A and the agent
// coming online and going offline as it happens (device changes cross over NATS), pings it and runs a command
// on it with streamed output (requests routed over NATS to the relay that
// holds the agent's stream), and gets a clear "offline" once it is gone.
func TestScaleOut(t *testing.T) {
	dsn := pgtest.DSN(t)
	natsURL := natstest.URL(t)
	prefix := natstest.Prefix()
	// Relay B gets A's CA and audit key (servertest.StartPair).
	a, b := servertest.StartPair(t, servertest.Options{Database: dsn, NATSURL: natsURL, NATSPrefix: prefix, Modify: func(c *server.Config) {
		c.CallerRecheck = 200 * time.Millisecond
	}})
	cs, ctx := b.Admin(t)

	// Watch on B before the agent connects to A.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := cs.WatchDevices(wctx, &desksidev1.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan *desksidev1.Device, 64)
	go func() {
		for {
			m, err := watch.Recv()
			if err != nil {
				close(changes)
				return
			}
			changes <- m.GetDevice()
		}
	}()
	waitChange := func(id string, online bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case d, ok := <-changes:
				if !ok {
					t.Fatal("relay B ended the watch")
				}
				if d.GetId() == id && d.GetOnline() == online {
					return
				}
			case <-deadline:
				t.Fatalf("relay B's watcher did not see %s online=%v", id, online)
			}
		}
	}
	// The device is enrolled on A; a policy change made on A reaches B's
	// watcher (which also shows that the watch is in place).
	st := a.Enroll(t, "scale-host")
	dev := st.DeviceID
	as, actx := a.Admin(t)
	seen := false
	for i := 0; i < 100 && !seen; i++ {
		if _, err := as.SetDevicePolicy(actx, &desksidev1.SetDevicePolicyRequest{DeviceId: dev, UnattendedAllowed: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-changes:
			seen = d.GetId() == dev
		case <-time.After(300 * time.Millisecond):
		}
	}
	if !seen {
		t.Fatal("relay B's watcher never heard of policy changes made on relay A")
	}

	log := servertest.DiscardLogger()
	agent := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: "scale-host",
		Commands: command.New(command.Options{Logger: log}),
	})
	waitChange(dev, true)

	// A request and a streamed command from B reach the agent on A. (On a
	// loaded machine the agent's first stream may drop and reconnect right
	// after B saw it online; the device is then offline for a moment.)
	servertest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := cs.PingDevice(ctx, &desksidev1.PingDeviceRequest{Id: dev})
		return err
	})
	res, err := runCmd(ctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev,
		Command: shell(`for i in $(seq 1 2000); do echo line $i; done; exit 7`)}, nil)
	if err != nil {
		t.Fatalf("command through relay B: %v", err)
	}
	var want strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if res.stdout != want.String() {
		t.Errorf("output through relay B: %d bytes, out of order or lost", len(res.stdout))
	}
	if e := res.exits[dev]; e == nil || e.GetExitCode() != 7 {
		t.Errorf("exit through relay B: %v", e)
	}
	auditHas(t, b, "admin", "command.run", dev)

	// The agent goes away: B's watcher hears it, and requests say offline.
	agent.Stop()
	waitChange(dev, false)
	_, err = cs.PingDevice(ctx, &desksidev1.PingDeviceRequest{Id: dev})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "offline") {
		t.Errorf("ping of the departed agent through relay B: %v, want FailedPrecondition: offline", err)
	}

	// A technician watching on B is disabled by an admin on A: the watch
	// on B ends (it re-reads the account from the shared store).
	addTechTo(t, a, "roamer", "roaming technician password", desksidev1.Role_ROLE_TIER2)
	roamer := signIn(t, b, "roamer", "roaming technician password")
	rw, err := roamer.cs.WatchDevices(roamer.ctx, &desksidev1.WatchDevicesRequest{})
	if err == nil {
		_, err = rw.Recv()
	}
	if err != nil {
		t.Fatal(err)
	}
	ats := desksidev1.NewTechnicianServiceClient(a.Dial(t))
	if _, err := ats.SetTechnicianDisabled(actx, &desksidev1.SetTechnicianDisabledRequest{Name: "roamer", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for {
		if _, err := rw.Recv(); err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("watch on B of a technician disabled on A: %v; want Unauthenticated", err)
			}
			break
		}
	}
	t.Logf("disabled on relay A, the watch on relay B ended %s later", time.Since(began).Round(time.Millisecond))
}

// TestScaleOutFirstStart starts two relays on one empty database at the
// same moment: both start, and there is one first admin.
func TestScaleOutFirstStart(t *testing.T) {
	dsn := pgtest.DSN(t)
	start := make(chan struct{})
	type result struct {
		srv *server.Server
		err error
	}
	results := make(chan result, 2)
	// The operator created the audit key first and copied it to both.
	keyFile := filepath.Join(t.TempDir(), audit.KeyFile)
	if err := audit.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		cfg := service.Config{Database: dsn, TURNListen: "off", AuditKeyFile: keyFile, Config: server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "off", WebListen: "off",
			AdminPassword: servertest.AdminPassword, Stdout: io.Discard, Logger: servertest.DiscardLogger()}}
		go func() {
			<-start
			srv, err := service.New(t.Context(), cfg)
			results <- result{srv, err}
		}()
	}
	close(start)
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("a relay did not start: %v", r.err)
			continue
		}
		r.srv.Close()
	}
	db, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.CountTechnicians(t.Context()); err != nil || n != 1 {
		t.Errorf("%d technicians (%v), want the one first admin", n, err)
	}
	// Both sealed one chain with the shared key.
	lg, err := audit.Open(t.Context(), audit.Config{KeyFile: keyFile, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := lg.Verify(t.Context(), nil); err != nil || rep.Bad != nil || rep.Anchor != 1 {
		t.Errorf("audit log after two first starts: %+v, %v", rep, err)
	}
}
