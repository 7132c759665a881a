package server

// Device scope: a technician's device groups (store.Technician.Groups,
// `deskside technician set NAME --groups a,b`) limit which devices they
// see and act on. Admins and technicians without groups see every device.
// A device outside the scope is answered exactly like a missing one, so a
// technician learns nothing of devices outside their groups.

import (
	"context"
	"path"
	"slices"

	"google.golang.org/grpc"

	"github.com/deskside/deskside/relay/store"
)

// deviceScope is the device groups the caller of ctx may see, for
// store.DeviceFilter.Groups: nil for every device (admins, technicians
// without groups, and calls without a technician).
func (s *Server) deviceScope(ctx context.Context) []string {
	c := callerFrom(ctx)
	if c == nil || c.Role == store.RoleAdmin || len(c.Groups) == 0 {
		return nil
	}
	return slices.Clone(c.Groups)
}

// inScope reports whether a device of group is in scope (nil: all).
func inScope(scope []string, group string) bool {
	return scope == nil || slices.Contains(scope, group)
}

// deviceInScope reports whether the caller of ctx may see d; when not,
// it audits the refusal (access.denied), which only admins read.
func (s *Server) deviceInScope(ctx context.Context, d store.Device) bool {
	if inScope(s.deviceScope(ctx), d.Group) {
		return true
	}
	what := "device"
	if m, ok := grpc.Method(ctx); ok {
		what = path.Base(m)
	}
	who := ""
	if c := callerFrom(ctx); c != nil {
		who = c.Name
	}
	s.audit(ctx, who, "access.denied", d.ID, what+": device group "+quoteGroup(d.Group)+" is not one of the technician's groups")
	return false
}

// quoteGroup names a group in an audit detail.
func quoteGroup(g string) string {
	if g == "" {
		return "(none)"
	}
	return `"` + g + `"`
}
