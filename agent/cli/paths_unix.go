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

// AgentEnvFile is where the Linux packages read DESKSIDE_RELAY and
// DESKSIDE_TOKEN from at install (installer/linuxpkg).
const AgentEnvFile = "/etc/deskside/agent.env"

// packageEnrollHint ends a waiting agent's next step.
const packageEnrollHint = "; or put DESKSIDE_RELAY=HOST:PORT and DESKSIDE_TOKEN=TOKEN in " + AgentEnvFile + " before installing the package, which then enrolls at install"
