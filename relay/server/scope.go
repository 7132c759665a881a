package server

// Device scope: a technician's device groups (store.Technician.Groups,
// `deskside technician set NAME --groups a,b`) limit which devices they
// see and act on. Admins and technicians without groups see every device.
// A device outside the scope is answered exactly like a missing one, so a
// technician learns nothing of devices outside their groups.

import (
	"context"
	"errors"
	"path"
	"slices"

	"google.golang.org/grpc"

	"github.com/deskside/deskside/relay/store"
)

// deviceScope is the device groups the caller of ctx may see, for
// store.DeviceFilter.Groups: nil for every device (admins, technicians
// without groups, and calls without a technician).
func (s *Server) deviceScope(ctx context.Context) []string {
	return scopeOf(callerFrom(ctx))
}

// scopeOf is c's device scope, as deviceScope.
func scopeOf(c *caller) []string {
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

// ticketGroup is the device group of t's device, which decides who sees
// t: nil when t concerns no device (or one since removed), which every
// technician sees.
func (s *Server) ticketGroup(ctx context.Context, t store.Ticket) (*string, error) {
	if t.DeviceID == "" {
		return nil, nil
	}
	d, err := s.store.GetDevice(ctx, t.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &d.Group, nil
}

// ticketInScope reports whether the caller of ctx may see t: tickets
// about a device follow the device's group; the others are everyone's.
// A refusal is audited like a device's.
func (s *Server) ticketInScope(ctx context.Context, t store.Ticket) (bool, error) {
	if s.deviceScope(ctx) == nil {
		return true, nil
	}
	g, err := s.ticketGroup(ctx, t)
	if err != nil || g == nil {
		return err == nil, err
	}
	return s.deviceInScope(ctx, store.Device{ID: t.DeviceID, Group: *g}), nil
}

// quoteGroup names a group in an audit detail.
func quoteGroup(g string) string {
	if g == "" {
		return "(none)"
	}
	return `"` + g + `"`
}
