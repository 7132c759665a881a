// Package natstest gives tests the NATS server to use and a subject prefix
// of their own, so that tests in several packages can share one server.
//
// The server is named by DESKSIDE_TEST_NATS, by default DefaultURL. When it
// cannot be reached the test is skipped, unless CI=true, when it fails: in
// CI a missing NATS is a broken setup, not a reason to pass.
package natstest

import (
	"cmp"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// DefaultURL is the test server when DESKSIDE_TEST_NATS is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns the test server's URL, skipping or failing t when it is not
// reachable (see the package documentation).
func URL(t testing.TB) string {
	t.Helper()
	u := cmp.Or(os.Getenv("DESKSIDE_TEST_NATS"), DefaultURL)
	probe.once.Do(func() {
		nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
		if err == nil {
			nc.Close()
		}
		probe.err = err
	})
	if probe.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS is not reachable at %s (DESKSIDE_TEST_NATS): %v", u, probe.err)
		}
		t.Skipf("NATS is not reachable at %s (set DESKSIDE_TEST_NATS to a NATS server's URL): %v — skipping (CI=true makes this a failure)", u, probe.err)
	}
	return u
}

var probe struct {
	once sync.Once
	err  error
}

// Prefix returns a subject prefix no other test uses.
func Prefix() string { return "test." + nuid.Next() }
