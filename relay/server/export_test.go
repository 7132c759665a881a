package server

import (
	"sync/atomic"
	"testing"
)

// CountPasswordChecks counts the argon2 password checks the relay runs
// until the test ends.
func CountPasswordChecks(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	prev := verifyPassword
	verifyPassword = func(hash, pw string) (bool, error) {
		n.Add(1)
		return prev(hash, pw)
	}
	t.Cleanup(func() { verifyPassword = prev })
	return &n
}
