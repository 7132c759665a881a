package cli

import (
	"os"
	"path/filepath"
)

// DefaultStateDir is %ProgramData%\Deskside\agent.
func DefaultStateDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "Deskside", "agent")
}

// packageEnrollHint ends a waiting agent's next step (no package here
// reads an enrollment file yet).
const packageEnrollHint = ""
