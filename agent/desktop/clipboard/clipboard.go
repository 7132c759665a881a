package clipboard

import (
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// MaxText is the largest clipboard text, in bytes of UTF-8, that a
// Clipboard reads or serves.
const MaxText = 1 << 20

// Clipboard shares one desktop's clipboard text. Its methods are safe for
// concurrent use.
type Clipboard interface {
	// SetText puts text on the desktop's clipboard, where it stays until
	// another program replaces it or the Clipboard is closed. It does not
	// cause a call of Config.OnChange.
	SetText(text string) error
	// Close stops watching and serving the clipboard and closes the
	// display connection; OnChange is not called after it returns. It is
	// idempotent.
	Close() error
}

// Config configures Open.
type Config struct {
	// Display is the X display; "" means $DISPLAY (see capture.Open for
	// the Wayland rules).
	Display string
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
	// OnChange is called, on the Clipboard's goroutine, with the new text
	// whenever another program puts text on the clipboard (at most
	// MaxText bytes, valid UTF-8). Required. It should return quickly.
	OnChange func(text string)
}

// CheckAndSetDefaults fills in the defaults and reports a missing field,
// wrapping ErrBadConfig.
func (c *Config) CheckAndSetDefaults() error {
	if c.OnChange == nil {
		return fmt.Errorf("%w: OnChange is required", ErrBadConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Truncate returns the longest prefix of s of at most n bytes that does
// not split a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	cut := n
	// Back up over continuation bytes to the start of the cut rune.
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
