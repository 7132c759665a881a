package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The web console ports this package to TypeScript (console/web/src/
// envelope.ts); testdata/vectors.json is the vector both check: Merkle
// roots and proofs, and envelopes sealed with fixed keys, nonces and
// times, down to the bytes of the call header. Regenerate with
// `go test ./proto/wire/envelope -run TestSharedVectors -update`.

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

const vectorsFile = "testdata/vectors.json"

type merkleVector struct {
	IDs    []string      `json:"ids"`
	Sorted []string      `json:"sorted"`
	Count  uint32        `json:"count"`
	Root   string        `json:"root"`
	Proofs []proofVector `json:"proofs"`
}

type proofVector struct {
	ID       string   `json:"id"`
	Index    uint32   `json:"index"`
	Siblings []string `json:"siblings"`
}

type envelopeVector struct {
	Name string `json:"name"`
	// Kind and Op: the operation ("command", "action", "desktop") as the
	// protobuf bytes of its message.
	Kind      string   `json:"kind"`
	Op        string   `json:"op"`
	DeviceIDs []string `json:"deviceIds"`
	Nonce     string   `json:"nonce"`
	IssuedMs  int64    `json:"issuedMs"`
	// Body is the EnvelopeBody's deterministic encoding, Signature the
	// technician's over it, Header the deskside-envelope-bin value (base64
	// without padding of the EnvelopeCall).
	Body      string `json:"body"`
	Signature string `json:"signature"`
	Header    string `json:"header"`
}

type vectors struct {
	// Seeds of the Ed25519 keys (RFC 8032 private keys).
	OrgSeed        string           `json:"orgSeed"`
	TechSeed       string           `json:"techSeed"`
	TechPublicKey  string           `json:"techPublicKey"`
	TechFingerprnt string           `json:"techFingerprint"`
	Certificate    string           `json:"certificate"`
	Merkle         []merkleVector   `json:"merkle"`
	Envelopes      []envelopeVector `json:"envelopes"`
}

func ids(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("dev-%03d", i)
	}
	return s
}

func seed(from byte) []byte {
	b := make([]byte, ed25519.SeedSize)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

func hexes(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

func makeVectors(t *testing.T) *vectors {
	v := &vectors{}
	lists := [][]string{
		{"d1"}, {"b", "a"}, ids(3), ids(5), ids(8), ids(13),
		{"zeta", "Alpha", "alpha", "", "alpha", "é-device", "0192c3d4-0000-7000-8000-000000000001"},
	}
	for _, l := range lists {
		tr := NewTree(l)
		mv := merkleVector{IDs: l, Sorted: SortedIDs(l), Count: uint32(tr.Len()), Root: hex.EncodeToString(tr.Root())}
		for _, id := range mv.Sorted {
			p := tr.Proof(id)
			mv.Proofs = append(mv.Proofs, proofVector{ID: id, Index: p.GetIndex(), Siblings: hexes(p.GetSiblings())})
		}
		v.Merkle = append(v.Merkle, mv)
	}

	org := ed25519.NewKeyFromSeed(seed(100))
	tech := ed25519.NewKeyFromSeed(seed(1))
	pub := tech.Public().(ed25519.PublicKey)
	cert, err := Certify(org, &desksidev1.TechnicianCertificateBody{
		Technician: "alice", PublicKey: pub, Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2,
		NotBefore: timestamppb.New(time.Unix(1_800_000_000, 0)), NotAfter: timestamppb.New(time.Unix(1_900_000_000, 0)),
		Serial: bytes.Repeat([]byte{7}, 16),
	})
	if err != nil {
		t.Fatal(err)
	}
	rawCert, _ := marshal.Marshal(cert)
	v.OrgSeed, v.TechSeed = hex.EncodeToString(seed(100)), hex.EncodeToString(seed(1))
	v.TechPublicKey, v.TechFingerprnt, v.Certificate = hex.EncodeToString(pub), Fingerprint(pub), hex.EncodeToString(rawCert)

	cases := []struct {
		name string
		op   proto.Message
		devs []string
	}{
		{"command on one device", &desksidev1.RunCommand{Command: "systemctl restart cups", Timeout: durationpb.New(30 * time.Second)}, []string{"0192c3d4-0000-7000-8000-000000000001"}},
		{"action on three devices", &desksidev1.RunAction{Action: &desksidev1.RunAction_Reboot{Reboot: &desksidev1.Reboot{Delay: durationpb.New(5 * time.Minute), Message: "Please save your work."}}}, ids(3)},
		{"desktop control", &desksidev1.DesktopOperation{Control: true, Monitor: -1, ViewerFingerprint: "sha-256 0B:30:55:7A:9F:C4:E9:0E:33:58:7D:A2:C7:EC:11:36:5B:80:A5:CA:EF:14:39:5E:83:A8:CD:F2:17:3C:61:86"}, []string{"d1"}},
	}
	for i, c := range cases {
		issued := time.UnixMilli(1_850_000_000_123 + int64(i))
		nonce := bytes.Repeat([]byte{byte(0xa0 + i)}, 16)
		tr := NewTree(c.devs)
		b := &desksidev1.EnvelopeBody{DevicesRoot: tr.Root(), DeviceCount: uint32(tr.Len()), Nonce: nonce,
			IssuedAt: timestamppb.New(issued), ExpiresAt: timestamppb.New(issued.Add(Lifetime))}
		var kind string
		switch o := c.op.(type) {
		case *desksidev1.RunCommand:
			kind, b.Operation = "command", &desksidev1.EnvelopeBody_Command{Command: o}
		case *desksidev1.RunAction:
			kind, b.Operation = "action", &desksidev1.EnvelopeBody_Action{Action: o}
		case *desksidev1.DesktopOperation:
			kind, b.Operation = "desktop", &desksidev1.EnvelopeBody_Desktop{Desktop: o}
		}
		body, sig, err := sign(tech, ctxEnvelope, b)
		if err != nil {
			t.Fatal(err)
		}
		call := &desksidev1.EnvelopeCall{Envelope: &desksidev1.SignedEnvelope{Body: body, Signature: sig, Certificate: cert}}
		if tr.Len() > 1 {
			call.Devices = SortedIDs(c.devs)
		}
		rawCall, _ := marshal.Marshal(call)
		rawOp, _ := marshal.Marshal(c.op)
		v.Envelopes = append(v.Envelopes, envelopeVector{
			Name: c.name, Kind: kind, Op: hex.EncodeToString(rawOp), DeviceIDs: c.devs, Nonce: hex.EncodeToString(nonce), IssuedMs: issued.UnixMilli(),
			Body: hex.EncodeToString(body), Signature: hex.EncodeToString(sig), Header: base64.RawStdEncoding.EncodeToString(rawCall),
		})

		// Each envelope passes the agent's verifier, on each of its devices.
		for _, id := range c.devs {
			ver := NewVerifier(Fingerprint(org.Public().(ed25519.PublicKey)), func() time.Time { return issued })
			ver.Started = issued.Add(-time.Minute)
			if _, err := ver.Verify(Request{Op: c.op, Envelope: call.GetEnvelope(), Proof: tr.Proof(id), DeviceID: id}); err != nil {
				t.Fatalf("%s on %s: %v", c.name, id, err)
			}
		}
	}
	return v
}

// TestSharedVectors checks testdata/vectors.json, which the web console's
// unit tests check too (console/web/test/envelope.test.ts), against this
// package.
func TestSharedVectors(t *testing.T) {
	got, err := json.MarshalIndent(makeVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(filepath.FromSlash(vectorsFile), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(vectorsFile))
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	if !bytes.Equal(bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n")), got) {
		t.Fatalf("%s differs from what this package computes; if the change is intended, regenerate with -update and check the web console's port (npm test in console/web)", vectorsFile)
	}
}
