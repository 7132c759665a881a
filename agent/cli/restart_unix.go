//go:build !windows

package cli

import (
	"os"
	"syscall"

	"github.com/deskside/deskside/agent/service"
)

// restartProcess runs the executable again: under a service manager by
// exiting (the unit restarts on failure), from a terminal by exec.
func restartProcess() {
	if service.Interactive() {
		if exe, err := os.Executable(); err == nil {
			_ = syscall.Exec(exe, os.Args, os.Environ())
		}
	}
	os.Exit(75)
}
