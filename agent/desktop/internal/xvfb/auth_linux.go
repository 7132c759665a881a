package xvfb

import (
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// The servers Start runs require a MIT-MAGIC-COOKIE-1. The cookies live in
// one Xauthority file per process, which $XAUTHORITY points to while any
// server runs (so clients exercise the $XAUTHORITY path); the file is
// removed and $XAUTHORITY restored when the last server stops.
var auth struct {
	mu      sync.Mutex
	dir     string // "" when no server runs
	file    string
	servers int
	prev    string // $XAUTHORITY before
	hadPrev bool
}

// acquireAuth adds a fresh cookie for display n to the process's
// Xauthority file and returns the file's path.
func acquireAuth(n int) (string, error) {
	auth.mu.Lock()
	defer auth.mu.Unlock()
	if auth.dir == "" {
		dir, err := os.MkdirTemp("", "deskside-xvfb-")
		if err != nil {
			return "", err
		}
		auth.dir, auth.file = dir, filepath.Join(dir, "Xauthority")
		auth.prev, auth.hadPrev = os.LookupEnv("XAUTHORITY")
		if err := os.Setenv("XAUTHORITY", auth.file); err != nil {
			return "", err
		}
	}
	cookie := make([]byte, 16)
	if _, err := rand.Read(cookie); err != nil {
		return "", err
	}
	f, err := os.OpenFile(auth.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(authEntry(strconv.Itoa(n), cookie)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	auth.servers++
	return auth.file, nil
}

// releaseAuth forgets one server; after the last one the file goes.
func releaseAuth() {
	auth.mu.Lock()
	defer auth.mu.Unlock()
	auth.servers--
	if auth.servers > 0 || auth.dir == "" {
		return
	}
	_ = os.RemoveAll(auth.dir)
	auth.dir, auth.file = "", ""
	if auth.hadPrev {
		_ = os.Setenv("XAUTHORITY", auth.prev)
	} else {
		_ = os.Unsetenv("XAUTHORITY")
	}
}

// authEntry encodes an Xauthority entry for any host ("FamilyWild").
func authEntry(display string, cookie []byte) []byte {
	const familyWild = 0xffff
	var b []byte
	b = binary.BigEndian.AppendUint16(b, familyWild)
	for _, field := range [][]byte{nil, []byte(display), []byte("MIT-MAGIC-COOKIE-1"), cookie} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(field)))
		b = append(b, field...)
	}
	return b
}

// XAuthority returns the Xauthority file of the running servers, or "".
func XAuthority() string {
	auth.mu.Lock()
	defer auth.mu.Unlock()
	return auth.file
}
