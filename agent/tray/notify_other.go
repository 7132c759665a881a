//go:build !linux

package tray

import (
	"fmt"
	"runtime"
)

// Notify is not implemented on this platform yet: the page's badge and
// the tray's menu still show new replies.
func Notify(title, body string) error {
	return fmt.Errorf("desktop notifications are not supported on %s yet", runtime.GOOS)
}

func trayHost() error { return nil }
