package cli

import (
	"os"
	"path/filepath"
)

// DefaultStateDir is /Library/Application Support/Deskside/agent for root,
// else under the user's Library.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/Library/Application Support/Deskside/agent"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "Library", "Application Support", "Deskside", "agent")
}

// packageEnrollHint ends a waiting agent's next step (no package here
// reads an enrollment file yet).
const packageEnrollHint = ""
