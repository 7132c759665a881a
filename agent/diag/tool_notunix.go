//go:build !unix

package diag

import "os/exec"

// ownProcessGroup keeps os/exec's default here: the context's
// cancellation kills the tool itself.
func ownProcessGroup(*exec.Cmd) {}
