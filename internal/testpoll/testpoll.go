// Package testpoll waits in tests for a condition that becomes true
// asynchronously (a process exits, an agent comes online, a window gets
// an event), without asserting how long that takes.
package testpoll

import (
	"testing"
	"time"
)

// CheckFor calls f every interval until it returns nil, failing t with
// f's last error once timeout has passed. The timeout only keeps a broken
// test from hanging; nothing is asserted about speed.
func CheckFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
