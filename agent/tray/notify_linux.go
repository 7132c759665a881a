package tray

import (
	"fmt"
	"os/exec"

	"github.com/godbus/dbus/v5"
)

// Notify shows a desktop notification through
// org.freedesktop.Notifications on the session bus, or notify-send when
// the bus cannot be reached from this process.
func Notify(title, body string) error {
	conn, err := dbus.SessionBus()
	if err != nil {
		out, xerr := exec.Command("notify-send", "--app-name=Deskside", title, body).CombinedOutput()
		if xerr == nil {
			return nil
		}
		return fmt.Errorf("no desktop notification: no session D-Bus (%w), and notify-send failed (%v %s)", err, xerr, out)
	}
	obj := conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
	call := obj.Call("org.freedesktop.Notifications.Notify", 0, "Deskside", uint32(0), "dialog-information", title, body,
		[]string{}, map[string]dbus.Variant{}, int32(-1))
	if call.Err != nil {
		return fmt.Errorf("desktop notification: %w", call.Err)
	}
	return nil
}

// trayHost reports whether a StatusNotifierItem host (the tray of the
// desktop: KDE, GNOME with the AppIndicator extension, XFCE, …) runs.
func trayHost() error {
	conn, err := dbus.SessionBus()
	if err != nil {
		return fmt.Errorf("%w: no session D-Bus (%v)", ErrNoTrayHost, err)
	}
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has); err != nil || !has {
		return fmt.Errorf("%w: nothing owns org.kde.StatusNotifierWatcher on the session bus", ErrNoTrayHost)
	}
	return nil
}
