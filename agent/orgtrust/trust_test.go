package orgtrust

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestGroupsAndTrust: a certificate limited to groups runs only once the
// endpoint itself is in one of them (its refusal uses up nothing), and
// Trust reports the pin, the policy and the groups as the files change.
func TestGroupsAndTrust(t *testing.T) {
	dir := t.TempDir()
	fp, key, cert := pinTechnician(t, dir, &desksidev1.TechnicianCertificateBody{Technician: "carol", Groups: []string{"lab"},
		Tier: desksidev1.TechnicianTier_TECHNICIAN_TIER_TIER2, NotAfter: timestamppb.New(time.Now().Add(time.Hour))})
	g, err := Open(dir, "dev-1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := g.Trust(); tr.GetOrgFingerprint() != fp || tr.GetNoCommands() || tr.GetNoDesktop() || len(tr.GetGroups()) != 0 || tr.GetPolicyError() != "" {
		t.Fatalf("trust without a policy: %v", tr)
	}
	op := &desksidev1.RunCommand{Command: "true"}
	env, err := envelope.Seal(key, cert, op, []string{"dev-1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg := &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_RunCommand{RunCommand: op}, Envelope: env}
	if err := g.Check(msg); err == nil || !strings.Contains(err.Error(), `technician "carol" is limited to groups [lab]; this device is in no group (deskside-agent policy --groups on the device)`) {
		t.Fatalf("device in no group: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, NoncesFile)); len(b) != 0 {
		t.Fatalf("a refused envelope's nonce was recorded: %q", b)
	}
	if err := WritePolicy(dir, Policy{NoUnattended: true, Groups: []string{"office", "lab"}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(msg); err != nil {
		t.Fatalf("device in group lab: %v", err)
	}
	if tr := g.Trust(); !tr.GetNoDesktop() || tr.GetNoCommands() || !slices.Equal(tr.GetGroups(), []string{"office", "lab"}) {
		t.Fatalf("trust after the policy changed: %v", tr)
	}
	// A broken policy file refuses everything and says so.
	if err := os.WriteFile(filepath.Join(dir, PolicyFile), []byte(`{"groups":["a b"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if tr := g.Trust(); !strings.Contains(tr.GetPolicyError(), "deskside-agent policy --groups") {
		t.Fatalf("trust with a bad policy: %v", tr)
	}
	if err := g.Check(msg); err == nil || !strings.Contains(err.Error(), "local policy") {
		t.Fatalf("bad policy: %v", err)
	}
}
