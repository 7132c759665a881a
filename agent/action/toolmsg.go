//go:build linux || windows

package action

import (
	"fmt"
	"strings"

	"github.com/deskside/deskside/proto/wire"
)

// maxExcerpt caps a tool's output quoted in a message (runes).
const maxExcerpt = 160

// excerpt is a tool's output fit for a message: one line, cleaned, capped.
func excerpt(out []byte) string {
	return wire.CleanString(strings.Join(strings.Fields(string(out)), " "), maxExcerpt)
}

// toolFailure describes a failed tool run, with its output when it has any.
func toolFailure(what string, out []byte, err error) error {
	if text := excerpt(out); text != "" {
		return fmt.Errorf("%s failed: %s: %w", what, text, err)
	}
	return fmt.Errorf("%s failed: %w", what, err)
}
