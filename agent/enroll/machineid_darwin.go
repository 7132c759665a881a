package enroll

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"time"
)

var platformUUID = regexp.MustCompile(`"IOPlatformUUID" = "([0-9A-Fa-f-]{36})"`)

// rawMachineID reads the hardware's IOPlatformUUID from the I/O Registry.
func rawMachineID() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice").Output()
	if err != nil {
		return "", fmt.Errorf("%w: ioreg: %v", ErrNoMachineID, err)
	}
	m := platformUUID.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%w: ioreg shows no IOPlatformUUID", ErrNoMachineID)
	}
	return string(m[1]), nil
}
