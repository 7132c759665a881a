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
