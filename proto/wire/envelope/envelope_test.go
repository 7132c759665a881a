package envelope

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func setup(t testing.TB, tier desksidev1.TechnicianTier) (org ed25519.PrivateKey, key ed25519.PrivateKey, cert *desksidev1.TechnicianCertificate) {
	_, org, _ = ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: pub, Tier: tier, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	return org, key, cert
}

func TestMerkleProofs(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8, 13, 100} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("dev-%03d", i)
		}
		tr := NewTree(ids)
		for _, id := range ids {
			p := tr.Proof(id)
			if !VerifyProof(tr.Root(), uint32(n), id, p) {
				t.Fatalf("n=%d %s: proof does not verify", n, id)
			}
			if VerifyProof(tr.Root(), uint32(n), "intruder", p) {
				t.Fatalf("n=%d: proof verifies for another id", n)
			}
		}
		if tr.Proof("intruder") != nil {
			t.Fatalf("n=%d: proof for an id not in the list", n)
		}
	}
}

func TestVerifyOrder(t *testing.T) {
	org, key, cert := setup(t, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	now := time.Now()
	v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), func() time.Time { return now })
	rc := &desksidev1.RunCommand{Command: "true"}
	env, err := Seal(key, cert, rc, []string{"d1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1"}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replay: %v", err)
	}
	// A desktop view needs tier 1, control tier 2.
	if !Allows(desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1, &desksidev1.DesktopOperation{}) ||
		Allows(desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1, &desksidev1.DesktopOperation{Control: true}) ||
		Allows(desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1, &desksidev1.RunAction{}) {
		t.Fatal("tier table")
	}
}

// The tiers rank tier1 < tier2 < tier3 < admin whatever their enum
// numbers (TIER3 is 4, ADMIN 3), and a command signed for many devices
// needs tier3.
func TestTierTable(t *testing.T) {
	view, control := &desksidev1.DesktopOperation{}, &desksidev1.DesktopOperation{Control: true}
	cmd, act := &desksidev1.RunCommand{Command: "true"}, &desksidev1.RunAction{}
	type op struct {
		name    string
		op      proto.Message
		devices uint32
	}
	ops := []op{{"view", view, 1}, {"control", control, 1}, {"action", act, 1}, {"command", cmd, 1}, {"fan-out command", cmd, 3}}
	for _, c := range []struct {
		tier    desksidev1.TechnicianTier
		allowed []string
	}{
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_UNSPECIFIED, nil},
		{desksidev1.TechnicianTier(99), nil},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER1, []string{"view"}},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, []string{"view", "control", "action", "command"}},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3, []string{"view", "control", "action", "command", "fan-out command"}},
		{desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN, []string{"view", "control", "action", "command", "fan-out command"}},
	} {
		for _, o := range ops {
			if got, want := AllowsOn(c.tier, o.op, o.devices), slices.Contains(c.allowed, o.name); got != want {
				t.Errorf("%s %s: allowed %v, want %v", TierName(c.tier), o.name, got, want)
			}
		}
	}
	for _, n := range []string{"tier1", "tier2", "tier3", "admin"} {
		tier, err := ParseTier(n)
		if err != nil || TierName(tier) != n {
			t.Errorf("ParseTier(%q) = %v, %v", n, tier, err)
		}
	}
	if Rank(desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3) >= Rank(desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN) {
		t.Error("tier3 ranks at or above admin")
	}

	// Through Verify: a tier-2 certificate's command signed for three
	// devices is refused on each; tier 3's runs.
	ids := []string{"d1", "d2", "d3"}
	for _, tier := range []desksidev1.TechnicianTier{desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER3} {
		org, key, cert := setup(t, tier)
		now := time.Now()
		v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), func() time.Time { return now })
		env, err := Seal(key, cert, cmd, ids, now)
		if err != nil {
			t.Fatal(err)
		}
		tr := NewTree(ids)
		_, err = v.Verify(Request{Op: cmd, Envelope: env, DeviceID: "d2", Proof: tr.Proof("d2")})
		if tier == desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2 {
			if err == nil || !strings.Contains(err.Error(), "is tier2, which may not run commands signed for 3 devices") {
				t.Errorf("tier2 fan-out: %v", err)
			}
		} else if err != nil {
			t.Errorf("tier3 fan-out: %v", err)
		}
	}
}

func TestOrgKeyRotation(t *testing.T) {
	oldPub, old, _ := ed25519.GenerateKey(rand.Reader)
	newPub, _, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := SignOrgKey(old, newPub, time.Now())
	got, err := VerifyOrgKey(Fingerprint(oldPub), s)
	if err != nil || !slices.Equal(got, newPub) {
		t.Fatalf("rotation: %v", err)
	}
	// A statement signed by the new key alone does not move the pin.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	self, _ := SignOrgKey(other, nil, time.Now())
	if _, err := VerifyOrgKey(Fingerprint(oldPub), self); err == nil {
		t.Fatal("a self-signed statement of another key moved the pin")
	}
}

// BenchmarkSealVerify is the dispatch latency envelopes add: the CLI
// seals, the agent verifies (certificate, envelope, nonce).
func BenchmarkSealVerify(b *testing.B) {
	org, key, cert := setup(b, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), nil)
	rc := &desksidev1.RunCommand{Command: "systemctl restart cups"}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		env, err := Seal(key, cert, rc, []string{"d1"}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1"}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkFanout1000 is the relay's and agents' added work for a
// fan-out to 1,000 devices: one seal, the tree, 1,000 proofs and 1,000
// verifications (done in parallel on the agents in reality).
func BenchmarkFanout1000(b *testing.B) {
	org, key, cert := setup(b, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("0192c3d4-0000-7000-8000-%012d", i)
	}
	rc := &desksidev1.RunCommand{Command: "uptime"}
	vs := make([]*Verifier, len(ids))
	for i := range vs {
		vs[i] = NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), nil)
	}
	for b.Loop() {
		env, _ := Seal(key, cert, rc, ids, time.Now())
		tr := NewTree(ids)
		for i, id := range ids {
			if _, err := vs[i].Verify(Request{Op: rc, Envelope: env, Proof: tr.Proof(id), DeviceID: id}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestVerifyGroups: a certificate limited to groups runs only on an
// endpoint that set one of them itself; a refusal does not use up the
// envelope's nonce.
func TestVerifyGroups(t *testing.T) {
	_, org, _ := ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "bob", PublicKey: pub, Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2,
		Groups: []string{"shop", "lab"}, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), func() time.Time { return now })
	rc := &desksidev1.RunCommand{Command: "true"}
	env, err := Seal(key, cert, rc, []string{"d1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, groups := range [][]string{nil, {"office"}} {
		_, err := v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1", DeviceGroups: groups})
		if err == nil || !strings.Contains(err.Error(), `technician "bob" is limited to groups [shop lab]`) ||
			!strings.Contains(err.Error(), "deskside-agent policy --groups") {
			t.Fatalf("device groups %v: %v", groups, err)
		}
	}
	got, err := v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1", DeviceGroups: []string{"office", "lab"}})
	if err != nil {
		t.Fatalf("a device in group lab refused the envelope refused before (nonce used up by a refusal?): %v", err)
	}
	if !slices.Equal(got.Groups, []string{"shop", "lab"}) {
		t.Fatalf("Verified.Groups = %v", got.Groups)
	}
	// A certificate without groups runs on any device.
	org2, key2, cert2 := setup(t, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	v2 := NewVerifier(Fingerprint(org2.Public().(ed25519.PublicKey)), func() time.Time { return now })
	env2, _ := Seal(key2, cert2, rc, []string{"d1"}, now)
	if _, err := v2.Verify(Request{Op: rc, Envelope: env2, DeviceID: "d1", DeviceGroups: []string{"lab"}}); err != nil {
		t.Fatal(err)
	}
}

func TestParseGroups(t *testing.T) {
	if g, err := ParseGroups(""); err != nil || g != nil {
		t.Fatalf(`"": %v %v`, g, err)
	}
	if g, err := ParseGroups("shop, lab,shop"); err != nil || !slices.Equal(g, []string{"shop", "lab"}) {
		t.Fatalf("%v %v", g, err)
	}
	for _, bad := range []string{"a,,b", "-x", "a b", "a\x1b[31m", strings.Repeat("x", MaxGroupLen+1), manyGroups(MaxGroups + 1)} {
		if _, err := ParseGroups(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func manyGroups(n int) string {
	g := make([]string, n)
	for i := range g {
		g[i] = fmt.Sprintf("g%d", i)
	}
	return strings.Join(g, ",")
}

// TestDesktopViewerFingerprint: a signed desktop operation binds the
// viewer's DTLS fingerprint; one without it, or with another, is refused.
func TestDesktopViewerFingerprint(t *testing.T) {
	org, key, cert := setup(t, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), nil)
	fp := func(b string) string { return "sha-256 " + strings.TrimSuffix(strings.Repeat(b+":", 32), ":") }
	check := func(signed, asked *desksidev1.DesktopOperation, want string) {
		t.Helper()
		env, err := Seal(key, cert, signed, []string{"d1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(Request{Op: asked, Envelope: env, DeviceID: "d1"})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("signed %v, asked %v: %v, want %q", signed, asked, err, want)
		}
	}
	op := &desksidev1.DesktopOperation{Control: true, ViewerFingerprint: fp("AB")}
	check(op, op, "")
	check(op, &desksidev1.DesktopOperation{Control: true, ViewerFingerprint: fp("CD")}, "differs from what")
	check(op, &desksidev1.DesktopOperation{Control: true}, "differs from what")
	none := &desksidev1.DesktopOperation{Control: true}
	check(none, none, "did not bind its DTLS certificate")
	bad := &desksidev1.DesktopOperation{Control: true, ViewerFingerprint: "sha-256 nope"}
	check(bad, bad, "malformed")
}

// TestCheckedCertificates: a Verifier checks a certificate's signature
// once per exact bytes; the same body with another signature, an
// expired or revoked certificate, and a certificate of another
// organisation are still refused after the first one was accepted, and
// it keeps at most maxCheckedCerts.
func TestCheckedCertificates(t *testing.T) {
	org, key, cert := setup(t, desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2)
	now := time.Now()
	v := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), func() time.Time { return now })
	rc := &desksidev1.RunCommand{Command: "true"}
	run := func(c *desksidev1.TechnicianCertificate) error {
		env, err := Seal(key, c, rc, []string{"d1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(Request{Op: rc, Envelope: env, DeviceID: "d1"})
		return err
	}
	if err := run(cert); err != nil {
		t.Fatal(err)
	}
	if err := run(cert); err != nil {
		t.Fatalf("the same certificate again: %v", err)
	}
	if len(v.certs) != 1 {
		t.Fatalf("%d certificates kept, want 1", len(v.certs))
	}
	forged := proto.Clone(cert).(*desksidev1.TechnicianCertificate)
	forged.Signature = slices.Clone(forged.Signature)
	forged.Signature[0] ^= 1
	if err := run(forged); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("the checked body with another signature: %v", err)
	}
	// Its body changed in one byte, signature kept.
	altered := proto.Clone(cert).(*desksidev1.TechnicianCertificate)
	altered.Body = slices.Clone(altered.Body)
	altered.Body[len(altered.Body)-1] ^= 1
	if err := run(altered); err == nil {
		t.Fatal("an altered body with the checked signature was accepted")
	}
	v.Revocations = func() *desksidev1.RevocationListBody {
		return &desksidev1.RevocationListBody{Technicians: []string{"alice"}}
	}
	if err := run(cert); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked after it was checked: %v", err)
	}
	v.Revocations = nil
	now = now.Add(2 * time.Hour)
	if err := run(cert); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired after it was checked: %v", err)
	}
	now = now.Add(-2 * time.Hour)
	// Another organisation's certificate for the same key is refused and
	// not kept.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	foreign, err := Certify(other, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: key.Public().(ed25519.PublicKey),
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_ADMIN, NotAfter: timestamppb.New(now.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(foreign); err == nil || !strings.Contains(err.Error(), "not signed by the organisation key this device pins") {
		t.Fatalf("another organisation's certificate: %v", err)
	}
	for i := range maxCheckedCerts + 3 {
		c, err := Certify(org, &desksidev1.TechnicianCertificateBody{Technician: fmt.Sprintf("t%d", i), PublicKey: key.Public().(ed25519.PublicKey),
			Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(now.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if err := run(c); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.certs) != maxCheckedCerts {
		t.Fatalf("%d certificates kept, want %d", len(v.certs), maxCheckedCerts)
	}
	for _, c := range v.certs {
		if c.parsed.GetTechnician() == "alice" {
			t.Fatal("the least recently used certificate is still kept")
		}
	}
}
