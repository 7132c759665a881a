//go:build windows

package service

import "golang.org/x/sys/windows"

// privileged reports whether this process may manage system services.
func privileged() bool { return windows.GetCurrentProcessToken().IsElevated() }

// elevateHint is how to run a command with the needed privileges.
const elevateHint = "run it from an Administrator prompt: "
