package server_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

func TestRelayRestartLosesNoSamples(t *testing.T) {
	dir := t.TempDir()
	r := startRelay(t, dir, "127.0.0.1:0", nil)
	addr := r.addr
	st := r.mustEnroll(t)
	a := runAgent(t, st, agentOpts{interval: 100 * time.Millisecond})
	ctx := context.Background()

	count := func() int {
		pts, err := r.srv.Store().HealthRange(ctx, st.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(pts)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if count() < 5 {
			return errNotYet
		}
		return nil
	})
	r.stop()
	down := time.Now()
	// The relay is down for several sample intervals: the agent spools.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if a.spool.Len() < 8 {
			return fmt.Errorf("spooled %d", a.spool.Len())
		}
		return nil
	})
	if a.link.Connected() {
		t.Fatal("agent thinks it is connected to a stopped relay")
	}
	up := time.Now()
	r = startRelay(t, dir, addr, nil) // same data, same address
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if !a.link.Connected() || a.spool.Len() > 1 {
			return fmt.Errorf("connected=%v spooled=%d", a.link.Connected(), a.spool.Len())
		}
		return nil
	})
	a.cancel() // stop sampling so the totals are final
	<-a.done
	a.done <- nil
	if a.spool.Dropped() != 0 {
		t.Fatalf("spool dropped %d samples", a.spool.Dropped())
	}
	// Every sample the agent ever took is stored exactly once (the store's
	// key is (device, id)), including those taken while the relay was down,
	// except any still waiting in the spool.
	pts, err := r.srv.Store().HealthRange(ctx, st.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// At least once: every sample that left the spool was stored; one still
	// spooled may be stored too (sent, ack not yet back).
	issued, spooled := a.spool.Issued(), a.spool.Len()
	if stored := uint64(len(pts)); stored+uint64(spooled) < issued || stored > issued {
		t.Fatalf("agent took %d samples; relay stored %d and %d are still spooled: samples were lost", issued, len(pts), spooled)
	}
	during := 0
	for _, p := range pts {
		if p.Time.After(down) && p.Time.Before(up) {
			during++
		}
	}
	if during < 5 {
		t.Fatalf("only %d samples from the %s outage arrived", during, up.Sub(down).Round(time.Millisecond))
	}
	t.Logf("%d samples stored, %d taken while the relay was down", len(pts), during)
}

// rawAgent is a hand-driven agent stream for sending bad reports.
type rawAgent struct {
	t      *testing.T
	stream desksidev1.AgentService_ConnectClient
	id     uint64
}

func newRawAgent(t *testing.T, r *relay) (*rawAgent, string) {
	st := r.mustEnroll(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := desksidev1.NewAgentServiceClient(r.dial(t, &st.Cert)).Connect(ctx,
		grpc.MaxCallSendMsgSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	a := &rawAgent{t: t, stream: s}
	a.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{ProtocolVersion: wire.ProtocolVersion, Hostname: "raw"}}})
	if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", m, err)
	}
	return a, st.DeviceID
}

func (a *rawAgent) send(m *desksidev1.AgentMessage) uint64 {
	a.id++
	m.Id = a.id
	if err := a.stream.Send(m); err != nil {
		a.t.Fatalf("send: %v", err)
	}
	return a.id
}

func (a *rawAgent) ack(id uint64) *desksidev1.Ack {
	a.t.Helper()
	m, err := a.stream.Recv()
	if err != nil {
		a.t.Fatalf("recv: %v", err)
	}
	if m.GetRefId() != id || m.GetAck() == nil {
		a.t.Fatalf("got %v, want ack of %d", m, id)
	}
	return m.GetAck()
}

func inventoryMsg(inv *desksidev1.Inventory) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Inventory{Inventory: &desksidev1.InventoryReport{Inventory: inv}}}
}

func healthMsg(samples ...*desksidev1.HealthSample) *desksidev1.AgentMessage {
	return &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Health{Health: &desksidev1.HealthReport{Samples: samples}}}
}

func TestBadReportsRefusedStreamContinues(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	a, dev := newRawAgent(t, r)
	good := sampleInventory()
	if ack := a.ack(a.send(inventoryMsg(good))); !ack.GetAccepted() {
		t.Fatalf("good inventory refused: %v", ack)
	}
	okSample := &desksidev1.HealthSample{Id: 1, Time: timestamppb.Now(), CpuPercent: 5}
	if ack := a.ack(a.send(healthMsg(okSample))); !ack.GetAccepted() || ack.GetStored() != 1 {
		t.Fatalf("good sample: %v", ack)
	}

	huge := sampleInventory()
	for i := range 25000 {
		huge.Software = append(huge.Software, &desksidev1.Software{Name: fmt.Sprintf("pkg%d", i), Version: "1"})
	}
	noHost := sampleInventory()
	noHost.Hostname = ""
	for _, tc := range []struct {
		name string
		msg  *desksidev1.AgentMessage
		code desksidev1.AckErrorCode
		want string
	}{
		{"too many software entries", inventoryMsg(huge), desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "Inventory.software has 25000 entries, limit 20000"},
		{"missing hostname", inventoryMsg(noHost), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "hostname is empty"},
		{"empty inventory report", inventoryMsg(nil), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "without an inventory"},
		{"NaN cpu", healthMsg(&desksidev1.HealthSample{Id: 2, Time: timestamppb.Now(), CpuPercent: math.NaN()}), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "not a finite number"},
		{"cpu over 100", healthMsg(&desksidev1.HealthSample{Id: 2, Time: timestamppb.Now(), CpuPercent: 250}), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "over 100"},
		{"sample without id", healthMsg(&desksidev1.HealthSample{Time: timestamppb.Now()}), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "id is zero"},
		{"sample from the future", healthMsg(&desksidev1.HealthSample{Id: 3, Time: timestamppb.New(time.Now().AddDate(1, 0, 0))}), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "too far"},
		{"too many samples", healthMsg(make([]*desksidev1.HealthSample, 1001)...), desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "limit 1000"},
		{"empty message", &desksidev1.AgentMessage{}, desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "empty message"},
		{"second hello", &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{}}}, desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack := a.ack(a.send(tc.msg))
			if ack.GetAccepted() || ack.GetError().GetCode() != tc.code || !strings.Contains(ack.GetError().GetMessage(), tc.want) {
				t.Fatalf("got %v, want refusal %s containing %q", ack, tc.code, tc.want)
			}
		})
	}

	// The stream still works and nothing stored was lost.
	if ack := a.ack(a.send(healthMsg(&desksidev1.HealthSample{Id: 4, Time: timestamppb.Now(), CpuPercent: 7}))); !ack.GetAccepted() {
		t.Fatalf("stream broken after refusals: %v", ack)
	}
	cs, ctx := r.admin(t)
	d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: dev})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetInventory().GetHostname() != good.GetHostname() || len(d.GetInventory().GetSoftware()) != 0 {
		t.Fatalf("stored inventory changed by a refused report: %v", d.GetInventory())
	}
	if d.GetLatestHealth().GetId() != 4 {
		t.Fatalf("latest health id %d, want 4", d.GetLatestHealth().GetId())
	}
	// Hostile strings are capped and cleaned, not refused.
	hostile := sampleInventory()
	hostile.Hostname = "<script>window.x=1</script>\x1b[31m" + strings.Repeat("A", 5000)
	if ack := a.ack(a.send(inventoryMsg(hostile))); !ack.GetAccepted() {
		t.Fatalf("hostile inventory: %v", ack)
	}
	d, _ = cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: dev})
	h := d.GetInventory().GetHostname()
	if len([]rune(h)) > 256 || strings.ContainsRune(h, 0x1b) || !strings.HasPrefix(h, "<script>") {
		t.Fatalf("hostname not capped/cleaned: %q (%d runes)", h[:40], len([]rune(h)))
	}
}

func TestOversizedMessageEndsStreamOnly(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	a, dev := newRawAgent(t, r)
	if ack := a.ack(a.send(inventoryMsg(sampleInventory()))); !ack.GetAccepted() {
		t.Fatal(ack)
	}
	big := sampleInventory()
	big.Hostname = strings.Repeat("x", wire.MaxMessageBytes+1)
	a.id++
	a.stream.Send(&desksidev1.AgentMessage{Id: a.id, Body: inventoryMsg(big).Body})
	_, err := a.stream.Recv()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "larger than max") {
		t.Fatalf("oversized message: %v, want ResourceExhausted", err)
	}
	// A new stream works and the stored inventory is intact.
	b, _ := newRawAgent(t, r)
	if ack := b.ack(b.send(healthMsg(&desksidev1.HealthSample{Id: 1, Time: timestamppb.Now()}))); !ack.GetAccepted() {
		t.Fatal(ack)
	}
	cs, ctx := r.admin(t)
	d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: dev})
	if err != nil || d.GetInventory().GetHostname() != "test-host" {
		t.Fatalf("inventory after oversized message: %v %v", d.GetInventory(), err)
	}
}

func TestHealthDeduplicated(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	a, _ := newRawAgent(t, r)
	s1 := &desksidev1.HealthSample{Id: 10, Time: timestamppb.Now()}
	s2 := &desksidev1.HealthSample{Id: 11, Time: timestamppb.Now()}
	if ack := a.ack(a.send(healthMsg(s1, s2))); ack.GetStored() != 2 {
		t.Fatal(ack)
	}
	if ack := a.ack(a.send(healthMsg(s1, s2))); !ack.GetAccepted() || ack.GetStored() != 0 || ack.GetDuplicates() != 2 {
		t.Fatalf("resend: %v", ack)
	}
}

func TestInventoryChangeInHistory(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	inv := &fakeInventory{inv: sampleInventory()}
	runAgent(t, st, agentOpts{inv: inv, invEvery: 50 * time.Millisecond})
	cs, ctx := r.admin(t)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || d.GetInventory() == nil {
			return errNotYet
		}
		return nil
	})
	changed := sampleInventory()
	changed.Memory.TotalBytes = 8 << 30
	changed.Software = []*desksidev1.Software{{Name: "firefox-esr", Version: "128.1"}}
	inv.Set(changed)
	var hist []*desksidev1.InventoryChange
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		h, err := cs.GetInventoryHistory(ctx, &desksidev1.GetInventoryHistoryRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		if len(h.GetChanges()) < 2 {
			return errNotYet
		}
		hist = h.GetChanges()
		return nil
	})
	want := map[string][2]string{
		"memory.total":          {"16 GiB", "8 GiB"},
		"software[firefox-esr]": {"", "128.1"},
	}
	for _, c := range hist {
		if w, ok := want[c.GetField()]; ok {
			if c.GetFrom() != w[0] || c.GetTo() != w[1] {
				t.Errorf("%s: %q → %q, want %q → %q", c.GetField(), c.GetFrom(), c.GetTo(), w[0], w[1])
			}
			delete(want, c.GetField())
		}
	}
	if len(want) > 0 {
		t.Errorf("history %v lacks %v", hist, want)
	}
	d, _ := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if d.GetDevice().GetMemoryBytes() != 8<<30 {
		t.Errorf("summary memory %d, want 8 GiB", d.GetDevice().GetMemoryBytes())
	}
}

func TestBusRequests(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	inv := &fakeInventory{inv: sampleInventory()}
	a := runAgent(t, st, agentOpts{inv: inv})
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.link.Connected() {
			return errNotYet
		}
		return nil
	})
	cs, ctx := r.admin(t)
	p, err := cs.PingDevice(ctx, &desksidev1.PingDeviceRequest{Id: st.DeviceID})
	if err != nil || p.GetRoundTrip().AsDuration() <= 0 {
		t.Fatalf("ping: %v %v", p, err)
	}
	changed := sampleInventory()
	changed.Hostname = "renamed-host"
	inv.Set(changed)
	ref, err := cs.RefreshInventory(ctx, &desksidev1.RefreshInventoryRequest{Id: st.DeviceID})
	if err != nil || ref.GetInventory().GetHostname() != "renamed-host" {
		t.Fatalf("refresh: %v %v", ref, err)
	}
	// An offline device gets a clear error.
	other := r.mustEnroll(t)
	_, err = cs.PingDevice(ctx, &desksidev1.PingDeviceRequest{Id: other.DeviceID})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("ping offline device: %v", err)
	}
}
