package inventory

import (
	"context"

	"golang.org/x/sys/unix"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// refineOS names the OS "macOS" (gopsutil says "darwin") and adds the build
// ("23F79") from kern.osversion.
func refineOS(_ context.Context, o *desksidev1.OperatingSystem) {
	o.Name = "macOS"
	if b, err := unix.Sysctl("kern.osversion"); err == nil {
		o.Build = clean(b)
	}
}
