package orgtrust

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// pinTechnician pins a new organisation key in dir and certifies a new
// technician key under it with body (its PublicKey filled in): the
// organisation's fingerprint, the technician's key and certificate.
func pinTechnician(t *testing.T, dir string, body *desksidev1.TechnicianCertificateBody) (string, ed25519.PrivateKey, *desksidev1.TechnicianCertificate) {
	t.Helper()
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	body.PublicKey = pub
	cert, err := envelope.Certify(org, body)
	if err != nil {
		t.Fatal(err)
	}
	fp := envelope.Fingerprint(orgPub)
	if err := Pin(dir, fp); err != nil {
		t.Fatal(err)
	}
	return fp, key, cert
}

// TestReplayAfterRestart: the nonce of an accepted envelope is kept on
// disk until the envelope expires, so a relay that replays it right after
// the agent restarted is refused; the file drops expired nonces at start.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	_, key, cert := pinTechnician(t, dir, &desksidev1.TechnicianCertificateBody{Technician: "alice",
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Now()
	clock := func() time.Time { return now }
	g, err := Open(dir, "dev-1", log, clock)
	if err != nil {
		t.Fatal(err)
	}
	// Issued a little in the future (the technician's clock is ahead,
	// within the allowed skew), so "issued before the agent started"
	// would not catch a replay after a restart.
	op := &desksidev1.RunCommand{Command: "true"}
	env, err := envelope.Seal(key, cert, op, []string{"dev-1"}, now.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: op}, Envelope: env}
	if err := g.Check(msg); err != nil {
		t.Fatalf("first use: %v", err)
	}
	now = now.Add(2 * time.Second) // the agent restarts
	g2, err := Open(dir, "dev-1", log, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Check(msg); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replay after a restart: %v, want refused as a replay", err)
	}
	// Once every envelope has expired, a restart empties the file.
	now = now.Add(time.Hour)
	if _, err := Open(dir, "dev-1", log, clock); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, NoncesFile)); err != nil || len(b) != 0 {
		t.Errorf("nonce file after expiry: %q, %v; want empty", b, err)
	}
}

// TestSignedDesktopConsent: a signed session's prompt names the
// certificate's technician and tier, not the relay's, and a certificate
// below tier 3 gets the prompt whatever mode the relay sends.
func TestSignedDesktopConsent(t *testing.T) {
	dir := t.TempDir()
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	if err := Pin(dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
	g, err := Open(dir, "dev-1", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tier     desksidev1.TechnicianTier
		asked    desksidev1.DesktopPolicyMode
		want     desksidev1.DesktopPolicyMode
		wantTier uint32
	}{
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED, 2},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED, 1},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED, 3},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE, desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE, 3},
	} {
		pub, key, _ := ed25519.GenerateKey(rand.Reader)
		cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: pub,
			Tier: c.tier, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		fp := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
		op := &desksidev1.DesktopOperation{Monitor: -1, ViewerFingerprint: fp}
		env, err := envelope.Seal(key, cert, op, []string{"dev-1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sd := &desksidev1.StartDesktop{Monitor: -1, ViewerFingerprint: fp, TechnicianName: "mallory", TechnicianTier: 3, PolicyMode: c.asked}
		if err := g.Check(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_StartDesktop{StartDesktop: sd}, Envelope: env}); err != nil {
			t.Fatalf("%v: %v", c.tier, err)
		}
		if sd.GetTechnicianName() != "alice" || sd.GetTechnicianTier() != c.wantTier || sd.GetPolicyMode() != c.want {
			t.Errorf("%v certificate, relay asked %v: the agent shows %s tier %d, mode %v; want alice tier %d, %v",
				c.tier, c.asked, sd.GetTechnicianName(), sd.GetTechnicianTier(), sd.GetPolicyMode(), c.wantTier, c.want)
		}
	}
}

// TestSignedTicketCodeAndAlwaysAsk: the ticket a consent prompt names is
// the one the technician signed (a relay can neither add nor change it),
// and `deskside-agent policy --consent always` makes a tier-3
// technician's unattended session ask too, with or without a pinned key.
func TestSignedTicketCodeAndAlwaysAsk(t *testing.T) {
	dir := t.TempDir()
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	if err := Pin(dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
	g, err := Open(dir, "dev-1", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	fp := "sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	unattended := desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED
	check := func(signed, sent string) (*desksidev1.StartDesktop, error) {
		env, err := envelope.Seal(key, cert, &desksidev1.DesktopOperation{Monitor: -1, ViewerFingerprint: fp, TicketCode: signed}, []string{"dev-1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sd := &desksidev1.StartDesktop{Monitor: -1, ViewerFingerprint: fp, TicketCode: sent, PolicyMode: unattended}
		return sd, g.Check(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_StartDesktop{StartDesktop: sd}, Envelope: env})
	}
	if sd, err := check("DS-7K3Q", "DS-7K3Q"); err != nil || sd.GetPolicyMode() != unattended {
		t.Fatalf("the signed ticket: %v, mode %v", err, sd.GetPolicyMode())
	}
	for _, c := range [][2]string{{"DS-7K3Q", "DS-0000"}, {"", "DS-7K3Q"}, {"DS-7K3Q", ""}} {
		if _, err := check(c[0], c[1]); err == nil || !strings.Contains(err.Error(), "differs from what") {
			t.Errorf("signed ticket %q, relay sent %q: %v", c[0], c[1], err)
		}
	}

	if err := WritePolicy(dir, Policy{AlwaysAsk: true}); err != nil {
		t.Fatal(err)
	}
	if sd, err := check("", ""); err != nil || sd.GetPolicyMode() != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED {
		t.Fatalf("always ask, pinned: %v, mode %v", err, sd.GetPolicyMode())
	}
	if !g.Trust().GetAlwaysAsk() {
		t.Error("the trust report does not say the device always asks")
	}
	// Without a pinned key too.
	dir2 := t.TempDir()
	if err := WritePolicy(dir2, Policy{AlwaysAsk: true}); err != nil {
		t.Fatal(err)
	}
	g2, err := Open(dir2, "dev-1", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sd := &desksidev1.StartDesktop{Monitor: -1, PolicyMode: unattended}
	if err := g2.Check(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_StartDesktop{StartDesktop: sd}}); err != nil || sd.GetPolicyMode() != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED {
		t.Fatalf("always ask, no pin: %v, mode %v", err, sd.GetPolicyMode())
	}
}

// TestNonceFileAppends: the guard keeps the nonce file open between
// requests, and every accepted nonce is in the file when Check returns:
// across Close, and across the file being rewritten when the verifier
// is made again (a hand-over or the pin changed on disk).
func TestNonceFileAppends(t *testing.T) {
	dir := t.TempDir()
	fp, key, cert := pinTechnician(t, dir, &desksidev1.TechnicianCertificateBody{Technician: "alice",
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	g, err := Open(dir, "dev-1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	op := &desksidev1.RunCommand{Command: "true"}
	var want []string
	accept := func() {
		t.Helper()
		env, err := envelope.Seal(key, cert, op, []string{"dev-1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Check(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: op}, Envelope: env}); err != nil {
			t.Fatal(err)
		}
		b := &desksidev1.EnvelopeBody{}
		if err := proto.Unmarshal(env.GetBody(), b); err != nil {
			t.Fatal(err)
		}
		want = append(want, hex.EncodeToString(b.GetNonce()))
		raw, err := os.ReadFile(filepath.Join(dir, NoncesFile))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			n, _, _ := strings.Cut(line, " ")
			got = append(got, n)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("nonce file holds %q, want %q", got, want)
		}
	}
	accept()
	accept()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	accept()
	if err := g.usePin(fp); err != nil { // rewrites the file
		t.Fatal(err)
	}
	accept()
}
