//go:build !windows

package cli

import (
	"fmt"
	"io/fs"
)

// checkPrivate refuses a session file that group or others may read: it
// holds a bearer token.
func checkPrivate(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run `chmod 600 %s` (and sign in again if someone may have read it)",
			ErrInsecureConfig, path, perm, path)
	}
	return nil
}
