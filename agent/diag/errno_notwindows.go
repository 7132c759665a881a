//go:build !windows

package diag

import (
	"errors"
	"syscall"
)

// isConnRefused reports a connection the peer refused (it answered).
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isConnReset reports a connection cut by the peer or a middlebox.
func isConnReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// isUnreachable reports a network or host without a route.
func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}
