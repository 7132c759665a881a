// Package proctabtest holds helpers for tests that start processes and
// wait for the process table to change: a process to become a zombie, a
// tree to end, output to arrive.
package proctabtest

import (
	"testing"
	"time"
)

// CheckFor polls f every interval until it returns nil, failing the test
// with f's last error after timeout.
func CheckFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
