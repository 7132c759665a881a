package inventory

import (
	"context"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// refineOS splits gopsutil's version "10.0.22631.3593 Build 22631.3593"
// into version "10.0.22631.3593" and build "22631.3593".
func refineOS(_ context.Context, o *desksidev1.OperatingSystem) {
	if v, b, ok := strings.Cut(o.Version, " Build "); ok {
		o.Version, o.Build = clean(v), clean(b)
	}
}
