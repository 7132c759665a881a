package diag

import (
	"errors"

	"golang.org/x/sys/windows"
)

// isConnRefused reports a connection the peer refused (it answered).
// Winsock has error numbers of its own.
func isConnRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }

// isConnReset reports a connection cut by the peer or a middlebox.
func isConnReset(err error) bool { return errors.Is(err, windows.WSAECONNRESET) }

// isUnreachable reports a network or host without a route.
func isUnreachable(err error) bool {
	return errors.Is(err, windows.WSAENETUNREACH) || errors.Is(err, windows.WSAEHOSTUNREACH)
}
