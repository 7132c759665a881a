package enroll

import (
	"fmt"
	"os"
)

// rawMachineID reads systemd's machine id (machine-id(5)), or D-Bus's on
// systems without systemd.
func rawMachineID() (string, error) {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(p)
		if err == nil && len(b) <= 64 {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("%w: neither /etc/machine-id nor /var/lib/dbus/machine-id is readable (systemd-machine-id-setup creates it)", ErrNoMachineID)
}
