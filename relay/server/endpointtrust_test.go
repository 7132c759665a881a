package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// TestEndpointTrustHostile: an agent's report is cut and cleaned, not
// trusted: thousands of groups with terminal escapes and control
// characters, and a huge policy error, are stored within the caps; a
// flood of changes is rate-limited.
func TestEndpointTrustHostile(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	a, dev := newRawAgent(t, r)
	bad := &desksidev1.EndpointTrust{NoCommands: true, NoDesktop: true, OrgFingerprint: "SHA256:\x1b]0;pwned\x07" + strings.Repeat("A", 5000),
		PolicyError: strings.Repeat("\x1b[31mred\u202e\r\n", 5000)}
	for i := range 5000 {
		bad.Groups = append(bad.Groups, fmt.Sprintf("lab%d\x1b[2J\x00", i)+strings.Repeat("g", 300))
	}
	bad.Groups = append(bad.Groups, "other")
	if ack := a.ack(a.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_EndpointTrust{EndpointTrust: bad}})); !ack.GetAccepted() {
		t.Fatalf("hostile report: %v, want it stored cut and cleaned", ack)
	}
	d, err := r.srv.Store().GetDevice(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	got := endpointtrust.Parse(d.EndpointTrust)
	if got == nil || !got.GetNoCommands() || len(got.GetGroups()) != endpointtrust.MaxGroups || len(d.EndpointTrust) > 4096 {
		t.Fatalf("stored %d bytes: %v", len(d.EndpointTrust), got)
	}
	for _, s := range append([]string{got.GetOrgFingerprint(), got.GetPolicyError()}, got.GetGroups()...) {
		if strings.ContainsAny(s, "\x1b\x00\x07\r\n\u202e") || utf8.RuneCountInString(s) > endpointtrust.MaxPolicyErrRunes {
			t.Errorf("stored unclean or long text %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				t.Errorf("control character in %q", s)
			}
		}
	}
	// A second change within a second waits.
	if ack := a.ack(a.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_EndpointTrust{EndpointTrust: &desksidev1.EndpointTrust{}}})); ack.GetAccepted() ||
		ack.GetError().GetCode() != desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED {
		t.Fatalf("second change at once: %v, want RATE_LIMITED", ack)
	}
	evs, err := r.srv.Store().ListAudit(context.Background(), store.AuditFilter{Action: "device.endpoint_policy", Target: dev})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, "not reported → ") || strings.Contains(evs[0].Detail, "\x1b") {
		t.Fatalf("audit: %v %v", evs, err)
	}

	// The relay answers early what the device says it refuses (the raw
	// agent would never answer), and audits it: here everything, since the
	// device says its policy file is unreadable.
	cs, ctx := r.admin(t)
	res, err := cs.RunAction(ctx, &desksidev1.RunActionRequest{DeviceId: dev, Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_FlushDns{FlushDns: &desksidev1.FlushDns{}}}})
	if err != nil || res.GetResult().GetOk() || !strings.Contains(res.GetResult().GetMessage(), "refuses everything privileged; fix it on the device with deskside-agent policy (as the device last reported") {
		t.Fatalf("action to a device that refuses actions: %v %v", res, err)
	}
	ds, err := cs.StartDesktopSession(ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: dev, Control: true})
	if err == nil {
		_, err = ds.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "refuses everything privileged") {
		t.Fatalf("desktop session on a device that refuses them: %v", err)
	}
	for _, action := range []string{"action.refused", "desktop.refused"} {
		evs, err := r.srv.Store().ListAudit(context.Background(), store.AuditFilter{Action: action, Target: dev})
		if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, "deskside-agent policy") {
			t.Errorf("audit %s: %v %v", action, evs, err)
		}
	}
}

// TestEndpointTrustInHello: a Hello whose endpoint trust has more groups
// than the relay keeps is accepted with the report cut, not refused (the
// general report caps would refuse the whole Hello).
func TestEndpointTrustInHello(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := desksidev1.NewAgentServiceClient(r.dial(t, &st.Cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := &desksidev1.EndpointTrust{NoDesktop: true}
	for i := range 1000 {
		tr.Groups = append(tr.Groups, fmt.Sprintf("g%d\u202e", i))
	}
	if err := s.Send(&desksidev1.AgentMessage{Id: 1, Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{ProtocolVersion: wire.ProtocolVersion, Hostname: "many-groups", EndpointTrust: tr}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", m, err)
	}
	d, err := r.srv.Store().GetDevice(context.Background(), st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	got := endpointtrust.Parse(d.EndpointTrust)
	if !got.GetNoDesktop() || len(got.GetGroups()) != endpointtrust.MaxGroups || got.GetGroups()[0] != "g0" {
		t.Fatalf("stored %v", got)
	}
	// The console shows it.
	cs, cctx := r.admin(t)
	resp, err := cs.GetDevice(cctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if err != nil || !resp.GetDevice().GetEndpointTrust().GetNoDesktop() {
		t.Fatalf("GetDevice: %v %v", resp.GetDevice().GetEndpointTrust(), err)
	}
}

// TestEndpointRefusalFromAgent: the relay's copy of the device's policy
// is stale (the agent reports changes once per health interval, here an
// hour), so the relay sends the command and the agent refuses it: the
// refusal reaches the caller, is audited, and nothing runs. A technician
// certificate limited to a group runs only once the device itself is in
// that group.
func TestEndpointRefusalFromAgent(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "stale-host")
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	if err := orgtrust.Pin(st.Dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
	log := servertest.DiscardLogger()
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: "stale-host", HealthInterval: time.Hour,
		Commands: command.New(command.Options{Logger: log}), Guard: guard,
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		return nil
	})
	dev := st.DeviceID
	cs, ctx := r.Admin(t)
	d, err := r.Srv.Store().GetDevice(context.Background(), dev)
	if tr := endpointtrust.Parse(d.EndpointTrust); err != nil || tr.GetOrgFingerprint() != envelope.Fingerprint(orgPub) || tr.GetNoCommands() {
		t.Fatalf("trust from Hello: %v %v", tr, err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "dana", PublicKey: pub, Groups: []string{"lab"},
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(name string) (*desksidev1.CommandExit, bool) {
		t.Helper()
		rc := &desksidev1.RunCommand{Command: "touch " + filepath.Join(dir, name)}
		env, err := envelope.Seal(key, cert, rc, []string{dev}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := proto.Marshal(&desksidev1.EnvelopeCall{Envelope: env, Devices: []string{dev}})
		res, err := runCmd(metadata.AppendToOutgoingContext(ctx, envelope.MetadataKey, string(raw)), cs, &desksidev1.RunCommandRequest{DeviceId: dev, Command: rc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, serr := os.Stat(filepath.Join(dir, name))
		return res.exits[dev], serr == nil
	}

	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoCommands: true, Groups: []string{"lab"}}); err != nil {
		t.Fatal(err)
	}
	ex, ran := run("off")
	if ran || !strings.Contains(ex.GetError(), "refused by the device: this device's local policy turns off remote commands") || strings.Contains(ex.GetError(), "last reported") {
		t.Fatalf("commands off on the device: %v, ran %v; want the agent's refusal", ex, ran)
	}
	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{Action: "command.run", Target: dev})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, "deskside-agent policy on the device") {
		t.Fatalf("audit of the agent's refusal: %v %v", evs, err)
	}

	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{Groups: []string{"shop"}}); err != nil {
		t.Fatal(err)
	}
	ex, ran = run("shop")
	if ran || !strings.Contains(ex.GetError(), `technician "dana" is limited to groups [lab]; this device is in [shop] (deskside-agent policy --groups on the device)`) {
		t.Fatalf("certificate for group lab on a shop device: %v, ran %v", ex, ran)
	}
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{Groups: []string{"shop", "lab"}}); err != nil {
		t.Fatal(err)
	}
	if ex, ran = run("lab"); !ran || ex.GetExitCode() != 0 {
		t.Fatalf("certificate for group lab on a lab device: %v, ran %v", ex, ran)
	}
}

// TestEndpointTrustAllDefaults: an agent that reports its policy with
// nothing refused and no pin (every default) shows as reported, not as
// "not reported yet", after a round trip through the store.
func TestEndpointTrustAllDefaults(t *testing.T) {
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := desksidev1.NewAgentServiceClient(r.dial(t, &st.Cert)).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&desksidev1.AgentMessage{Id: 1, Body: &desksidev1.AgentMessage_Hello{Hello: &desksidev1.Hello{ProtocolVersion: wire.ProtocolVersion, Hostname: "plain", EndpointTrust: &desksidev1.EndpointTrust{}}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", m, err)
	}
	cs, cctx := r.admin(t)
	resp, err := cs.GetDevice(cctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if err != nil || resp.GetDevice().GetEndpointTrust() == nil {
		t.Fatalf("GetDevice: an all-default report reads as never reported (%v)", err)
	}
}
