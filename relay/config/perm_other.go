//go:build !unix

package config

import (
	"errors"
	"fmt"
	"os"
)

// ErrModeUnchecked: on this platform the relay cannot tell who may read
// its configuration file, so it keeps no secret written in it.
var ErrModeUnchecked = errors.New("file permissions are not checked on this platform")

// checkFileMode refuses secrets written inline: this platform's file
// permissions are not checked.
func checkFileMode(_ string, _ os.FileInfo, inline []*Setting) error {
	if len(inline) == 0 {
		return nil
	}
	s := inline[0]
	return &Error{Where: s.Where, Key: s.Key.Name, Err: fmt.Errorf("%w: move the secret to %s or the environment (%s)", ErrModeUnchecked, secretPairs[s.Key.Name], s.Key.Env)}
}

// readableByOthers is not checked on this platform.
func readableByOthers(string) string { return "" }
