package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/action"
	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/orgtrust"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

type techKey struct {
	key  ed25519.PrivateKey
	cert *desksidev1.TechnicianCertificate
}

func newTech(t *testing.T, org ed25519.PrivateKey, name string, tier desksidev1.TechnicianTier) techKey {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{
		Technician: name, PublicKey: pub, Tier: tier, NotAfter: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return techKey{key, cert}
}

func (k techKey) seal(t *testing.T, op proto.Message, devs []string, now time.Time) *desksidev1.SignedEnvelope {
	t.Helper()
	env, err := envelope.Seal(k.key, k.cert, op, devs, now)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestSignedEnvelopesThroughRelay runs a real relay and a real agent
// that pins an organisation key, and attacks the envelope check the ways
// issue 11 lists: each refused request would have created a file, and
// the test checks that none was created.
func TestSignedEnvelopesThroughRelay(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "env-host")
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
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, Hostname: "env-host",
		Commands: command.New(command.Options{Logger: log}), Actions: action.New(action.Options{Logger: log}), Guard: guard,
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		return nil
	})
	dev := st.DeviceID
	cs, ctx := r.Admin(t)
	tier2 := newTech(t, org, "alice", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	dir := t.TempDir()
	touch := func(name string) *desksidev1.RunCommand {
		return &desksidev1.RunCommand{Command: "touch " + filepath.Join(dir, name)}
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	run := func(t *testing.T, rc *desksidev1.RunCommand, env *desksidev1.SignedEnvelope, devs ...string) *desksidev1.CommandExit {
		t.Helper()
		cctx := ctx
		if env != nil {
			raw, _ := proto.Marshal(&desksidev1.EnvelopeCall{Envelope: env, Devices: devs})
			cctx = metadata.AppendToOutgoingContext(ctx, envelope.MetadataKey, string(raw))
		}
		res, err := runCmd(cctx, cs, &desksidev1.RunCommandRequest{DeviceId: dev, Command: rc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.exits[dev]
	}
	refused := func(t *testing.T, name string, ex *desksidev1.CommandExit, reason string) {
		t.Helper()
		if !strings.Contains(ex.GetError(), "refused by the device") || !strings.Contains(ex.GetError(), reason) {
			t.Errorf("exit %v, want a refusal naming %q", ex, reason)
		}
		if exists(name) {
			t.Errorf("%s was created: the agent ran a refused command", name)
		}
	}

	t.Run("tier2 signed command runs, its replay does not", func(t *testing.T) {
		rc := touch("ok")
		env := tier2.seal(t, rc, []string{dev}, time.Now())
		if ex := run(t, rc, env, dev); ex.GetExitCode() != 0 || ex.GetError() != "" || !exists("ok") {
			t.Fatalf("signed command: %v, file created %v", ex, exists("ok"))
		}
		os.Remove(filepath.Join(dir, "ok"))
		refused(t, "ok", run(t, rc, env, dev), "already used")
	})
	t.Run("fan-out list with a Merkle proof", func(t *testing.T) {
		// A command signed for many devices takes tier 3 on the device.
		rc := touch("fanout")
		devs := []string{"dev-a", dev, "dev-c", "dev-d", "dev-e"}
		refused(t, "fanout", run(t, rc, tier2.seal(t, rc, devs, time.Now()), devs...), "tier2, which may not run commands signed for 5 devices")
		tier3 := newTech(t, org, "alice", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3)
		if ex := run(t, rc, tier3.seal(t, rc, devs, time.Now()), devs...); ex.GetExitCode() != 0 || !exists("fanout") {
			t.Fatalf("fan-out: %v", ex)
		}
	})
	t.Run("no envelope", func(t *testing.T) {
		refused(t, "none", run(t, touch("none"), nil), "signed envelope")
	})
	t.Run("expired", func(t *testing.T) {
		rc := touch("expired")
		refused(t, "expired", run(t, rc, tier2.seal(t, rc, []string{dev}, time.Now().Add(-3*time.Minute)), dev), "expired")
	})
	t.Run("another device", func(t *testing.T) {
		rc := touch("other")
		refused(t, "other", run(t, rc, tier2.seal(t, rc, []string{"other-device"}, time.Now()), "other-device"), "not for this device")
	})
	t.Run("arguments changed by the relay", func(t *testing.T) {
		env := tier2.seal(t, &desksidev1.RunCommand{Command: "true"}, []string{dev}, time.Now())
		refused(t, "changed", run(t, touch("changed"), env, dev), "differs from what")
	})
	t.Run("key not certified", func(t *testing.T) {
		_, stranger, _ := ed25519.GenerateKey(rand.Reader)
		rc := touch("stranger")
		env := techKey{stranger, tier2.cert}.seal(t, rc, []string{dev}, time.Now())
		refused(t, "stranger", run(t, rc, env, dev), "not signed by the key certified")
	})
	t.Run("tier1 asks for a command", func(t *testing.T) {
		rc := touch("tier1")
		t1 := newTech(t, org, "bob", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1)
		refused(t, "tier1", run(t, rc, t1.seal(t, rc, []string{dev}, time.Now()), dev), "tier1, which may not run commands")
	})
	t.Run("compromised relay forges a certificate", func(t *testing.T) {
		// The relay signs a certificate with a key of its own (the CA's
		// place): the agent pins another organisation key.
		_, relayKey, _ := ed25519.GenerateKey(rand.Reader)
		forged := newTech(t, relayKey, "mallory", desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN)
		rc := touch("forged")
		refused(t, "forged", run(t, rc, forged.seal(t, rc, []string{dev}, time.Now()), dev), "not signed by the organisation key this device pins")
		// Nor can it claim the organisation key without its signature.
		b := &desksidev1.TechnicianCertificateBody{}
		proto.Unmarshal(forged.cert.GetBody(), b)
		b.OrgPublicKey = orgPub
		body, _ := proto.Marshal(b)
		forged.cert = &desksidev1.TechnicianCertificate{Body: body, Signature: ed25519.Sign(relayKey, body)}
		refused(t, "forged", run(t, rc, forged.seal(t, rc, []string{dev}, time.Now()), dev), "signature does not verify")
	})
	t.Run("revoked technician", func(t *testing.T) {
		carol := newTech(t, org, "carol", desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
		l, err := envelope.SignRevocations(org, &desksidev1.RevocationListBody{Serial: 1, Technicians: []string{"carol"}})
		if err != nil {
			t.Fatal(err)
		}
		org := desksidev1.NewOrgServiceClient(r.Dial(t))
		if _, err := org.PublishRevocations(ctx, &desksidev1.PublishRevocationsRequest{List: l}); err != nil {
			t.Fatal(err)
		}
		rc := touch("revoked")
		refused(t, "revoked", run(t, rc, carol.seal(t, rc, []string{dev}, time.Now()), dev), `"carol" is revoked`)
		// A list signed by another key is refused by the relay.
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		bad, _ := envelope.SignRevocations(other, &desksidev1.RevocationListBody{Serial: 2})
		bad.Signature[0] ^= 1
		if _, err := org.PublishRevocations(ctx, &desksidev1.PublishRevocationsRequest{List: bad}); err == nil {
			t.Error("relay stored a revocation list whose signature does not verify")
		}
		// The agent stored the list: a relay that stops sending it does
		// not bring carol back.
		if _, err := os.Stat(filepath.Join(st.Dir, orgtrust.RevocationsFile)); err != nil {
			t.Errorf("agent did not store the revocation list: %v", err)
		}
	})
	t.Run("action without envelope", func(t *testing.T) {
		resp, err := cs.RunAction(ctx, &desksidev1.RunActionRequest{DeviceId: dev, Action: &desksidev1.RunAction{Action: &desksidev1.RunAction_KillProcess{KillProcess: &desksidev1.KillProcess{Pid: 999999}}}})
		if err != nil || resp.GetResult().GetOk() || !strings.Contains(resp.GetResult().GetMessage(), "signed envelope") {
			t.Errorf("unsigned action: %v %v", resp, err)
		}
	})
	t.Run("local policy turns commands off", func(t *testing.T) {
		if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoCommands: true}); err != nil {
			t.Fatal(err)
		}
		defer orgtrust.WritePolicy(st.Dir, orgtrust.Policy{})
		rc := touch("policy")
		refused(t, "policy", run(t, rc, tier2.seal(t, rc, []string{dev}, time.Now()), dev), "local policy turns off remote commands")
	})
	// Every refusal is audited on the relay with its reason.
	evs, err := r.Srv.Store().ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var refusals int
	for _, e := range evs {
		if e.Action == "command.run" && strings.Contains(e.Detail, "refused by the device") {
			refusals++
		}
	}
	if refusals < 9 {
		t.Errorf("%d refusals audited, want at least 9", refusals)
	}
}
