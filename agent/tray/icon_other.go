//go:build !linux && !windows

package tray

import (
	"context"
	"fmt"
	"runtime"
)

// RunIcon has no tray icon on this platform yet (fyne.io/systray needs
// cgo on macOS): the Get help page still works (`deskside-tray --open`).
func RunIcon(ctx context.Context, t *Tray) error {
	return fmt.Errorf("%w: the tray icon is not built for %s yet", ErrNoTrayHost, runtime.GOOS)
}
