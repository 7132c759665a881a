package banner

import "log/slog"

// Title prefixes the banner window's name (WM_NAME and _NET_WM_NAME):
// "Deskside: alice is viewing your screen".
const Title = "Deskside"

// ButtonLabel is the text of the banner's button.
const ButtonLabel = "End session"

// Config configures a banner.
type Config struct {
	// Display is the X display ("" = $DISPLAY).
	Display string
	Logger  *slog.Logger
	// Text is the line shown: "alice is viewing your screen".
	Text string
	// OnEnd is called (once, from the banner's goroutine) when the user
	// clicks End session.
	OnEnd func()
}
