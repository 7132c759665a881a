//go:build !windows && !darwin

package cli

import (
	"os"
	"path/filepath"
)

// DefaultStateDir is /var/lib/deskside-agent for root, else the user's
// state directory (so `make run` works without privileges).
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/deskside-agent"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "deskside-agent")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "deskside-agent")
}
