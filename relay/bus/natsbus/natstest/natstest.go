// Package natstest gives tests the NATS server to use and a subject prefix
// of their own, so that tests in several packages can share one server.
//
// The server is named by DESKSIDE_TEST_NATS, by default DefaultURL. When it
// cannot be reached the test is skipped, unless CI=true, when it fails: in
// CI a missing NATS is a broken setup, not a reason to pass (testkit.Need).
// Under -short the test is skipped (testkit.Heavy).
package natstest

import (
	"cmp"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/deskside/deskside/internal/testkit"
)

// DefaultURL is the test server when DESKSIDE_TEST_NATS is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns the test server's URL, skipping or failing t when it is not
// reachable (see the package documentation).
func URL(t testing.TB) string {
	t.Helper()
	testkit.Heavy(t, "needs NATS")
	u := cmp.Or(os.Getenv("DESKSIDE_TEST_NATS"), DefaultURL)
	probe.once.Do(func() {
		nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
		if err == nil {
			nc.Close()
		}
		probe.err = err
	})
	testkit.Need(t, "NATS at "+u, probe.err, "start one (Debian package nats-server: nats-server -a 127.0.0.1 -p 4222) or set DESKSIDE_TEST_NATS to a NATS server's URL")
	return u
}

var probe struct {
	once sync.Once
	err  error
}

// Prefix returns a subject prefix no other test uses.
func Prefix() string { return "test." + nuid.Next() }
