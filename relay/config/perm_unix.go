//go:build unix

package config

import (
	"fmt"
	"os"
)

// checkFileMode refuses a configuration file that every user may write
// (they would configure the relay), and one that every user may read when
// it holds a secret inline (the settings in inline).
func checkFileMode(path string, fi os.FileInfo, inline []*Setting) error {
	mode := fi.Mode().Perm()
	if mode&0o002 != 0 {
		return &Error{Where: path, Err: fmt.Errorf("%w: every user may write this file (mode %04o), and so configure the relay: run `chmod o-w %s`", ErrValue, mode, path)}
	}
	if len(inline) > 0 && mode&0o004 != 0 {
		s := inline[0]
		return &Error{Where: s.Where, Key: s.Key.Name, Err: fmt.Errorf("%w: this file holds a secret and every user may read it (mode %04o): run `chmod o-r %s` (the relay's packaged file is 0640, group deskside), or move the secret to %s",
			ErrSecretExposed, mode, path, secretPairs[s.Key.Name])}
	}
	return nil
}

// readableByOthers describes a secret file every user may read, or
// returns "" when they may not.
func readableByOthers(path string) string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("is readable by every user (mode %04o)", fi.Mode().Perm())
}
