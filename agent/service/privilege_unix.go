//go:build !windows

package service

import "os"

// privileged reports whether this process may manage system services.
func privileged() bool { return os.Geteuid() == 0 }

// elevateHint is how to run a command with the needed privileges.
const elevateHint = "run it as root: sudo "
