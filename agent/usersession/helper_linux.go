package usersession

import "os"

// helperDisplay is the display the helper serves, as its hello says.
func helperDisplay() string { return os.Getenv("DISPLAY") }

// helperCapture reports whether the helper can capture here: X11 can.
func helperCapture() error { return nil }
