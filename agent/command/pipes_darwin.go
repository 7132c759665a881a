package command

import (
	"os"

	"github.com/deskside/deskside/agent/proctab"
)

// pipeIdentity: macOS offers no portable way to list another process's
// open files without libproc, so pipe holders are not searched.
func pipeIdentity(*os.File) (string, bool) { return "", false }

func pipeHolders(map[int]proctab.Proc, []string) []int { return nil }
