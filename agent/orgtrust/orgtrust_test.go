package orgtrust

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestReplayAfterRestart: the nonce of an accepted envelope is kept on
// disk until the envelope expires, so a relay that replays it right after
// the agent restarted is refused; the file drops expired nonces at start.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	orgPub, org, _ := ed25519.GenerateKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := envelope.Certify(org, &desksidev1.TechnicianCertificateBody{Technician: "alice", PublicKey: pub,
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if err := Pin(dir, envelope.Fingerprint(orgPub)); err != nil {
		t.Fatal(err)
	}
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
