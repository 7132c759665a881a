package cli_test

import (
	"crypto/ed25519"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
)

// TestRevokeDoesNotTrustTheRelaysList: the last revocation list signed
// with the organisation key is kept beside it, so a relay that lost the
// list (restored from an old backup, or compromised) cannot make the next
// revocation drop an earlier one or reuse its serial.
func TestRevokeDoesNotTrustTheRelaysList(t *testing.T) {
	r := startRelay(t)
	admin := r.cli(t)
	admin.login("admin", adminPassword)
	orgKey := filepath.Join(t.TempDir(), "org-key.pem")
	admin.must("org", "init", orgKey)
	admin.must("technician", "revoke", "alice", "--org-key", orgKey)

	// The relay loses its list.
	if err := r.srv.Store().PutRelaySetting(t.Context(), "org.revocations", nil); err != nil {
		t.Fatal(err)
	}
	res := admin.must("technician", "revoke", "bob", "--org-key", orgKey)
	if !strings.Contains(res.stderr, "older than the 1 signed here") {
		t.Errorf("no warning that the relay's list went back: %s", res)
	}
	raw, err := r.srv.Store().GetRelaySetting(t.Context(), "org.revocations")
	if err != nil {
		t.Fatal(err)
	}
	l := &desksidev1.RevocationList{}
	if err := proto.Unmarshal(raw, l); err != nil {
		t.Fatal(err)
	}
	body := &desksidev1.RevocationListBody{}
	if err := proto.Unmarshal(l.GetBody(), body); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.ParseRevocations(ed25519.PublicKey(body.GetOrgPublicKey()), l); err != nil {
		t.Fatal(err)
	}
	if body.GetSerial() != 2 || !slices.Contains(body.GetTechnicians(), "alice") || !slices.Contains(body.GetTechnicians(), "bob") {
		t.Errorf("published list %d %q, want serial 2 revoking alice and bob", body.GetSerial(), body.GetTechnicians())
	}
}
