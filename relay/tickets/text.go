package tickets

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deskside/deskside/proto/wire"
)

// Limits on what a ticket holds. Longer input is refused, not cut: the
// caller learns at once and can shorten it.
const (
	MaxSubjectRunes  = 200
	MaxNameRunes     = 200
	MaxEmailBytes    = 254
	MaxCategoryRunes = 64
	MaxReasonRunes   = 1000
	// MaxTextBytes bounds a description, a reply or a note.
	MaxTextBytes = 32 << 10
)

// line cleans a one-line field: terminal escapes, control and
// bidirectional characters go, tabs and newlines become spaces; more than
// max runes is refused.
func line(field, s string, max int) (string, error) {
	if len(s) > 4*max+64 {
		return "", invalid("%s is %d bytes; at most %d characters", field, len(s), max)
	}
	c := strings.Join(strings.Fields(wire.CleanString(s, 4*max+64)), " ")
	if n := utf8.RuneCountInString(c); n > max {
		return "", invalid("%s is %d characters; at most %d", field, n, max)
	}
	return c, nil
}

// text cleans a multi-line field (description, reply): each line as
// wire.CleanString does, newlines kept, trailing spaces and blank lines at
// the ends dropped; more than MaxTextBytes is refused.
func text(field, s string) (string, error) {
	if len(s) > MaxTextBytes {
		return "", invalid("%s is %d bytes; at most %d (%d KiB): shorten it, or put long logs in a note of their own", field, len(s), MaxTextBytes, MaxTextBytes>>10)
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(wire.CleanString(l, MaxTextBytes), " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n "), nil
}

// email checks a requester's address loosely: one "@" with something on
// both sides, no spaces or control characters.
func email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > MaxEmailBytes {
		return "", invalid("requester email is %d bytes; at most %d", len(s), MaxEmailBytes)
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || wire.CleanString(s, MaxEmailBytes) != s ||
		strings.ContainsAny(s, " \t<>\"") {
		return "", invalid("requester email %q is not an address like name@example.com", wire.CleanString(s, 80))
	}
	return s, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
