package cli_test

import (
	"testing"

	"github.com/deskside/deskside/internal/testkit"
)

// Every invocation closes its connection, whether it succeeds or fails:
// once the relay is stopped, no goroutine the test started is left.
func TestNoLeakedConnections(t *testing.T) {
	testkit.CheckGoroutines(t)
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)
	seed(t, r)
	c.must("devices", "list")
	c.must("inventory", "export", "--format", "json")
	c.fails(1, "no device", "devices", "show", "dev-nope")
	c.fails(1, "no device", "diag", "dev-nope")
	c.fails(1, "no device", "run", "dev-nope", "--", "true")
	c.fails(1, "no device", "action", "dev-nope", "flush-dns")
	c.env["DESKSIDE_PASSWORD"] = adminPassword
	c.fails(1, "cannot reach", "login", "--relay", "127.0.0.1:1")
	c.must("logout")
}
