package servertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server"
)

// StartPair runs two relays with options o (a shared Database and NATS
// for a scaled-out pair). Relay B gets A's CA and audit key, as an
// operator copies ca.pem, ca-key.pem and the audit key: agent
// certificates and enrollment tokens are valid on both, and both seal one
// audit chain.
func StartPair(t testing.TB, o Options) (a, b *Relay) {
	t.Helper()
	a = Start(t, o)
	dirB := t.TempDir()
	for _, f := range []string{pki.CAFile, "ca-key.pem", audit.KeyFile} {
		raw, err := os.ReadFile(filepath.Join(a.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ob := o
	ob.Modify = func(c *server.Config) {
		if o.Modify != nil {
			o.Modify(c)
		}
		c.DataDir = dirB
	}
	return a, Start(t, ob)
}
