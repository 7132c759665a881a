//go:build !linux && !darwin && !windows

package inventory

import (
	"context"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// refineOS has nothing to add to what gopsutil reports on this platform.
func refineOS(context.Context, *desksidev1.OperatingSystem) {}
