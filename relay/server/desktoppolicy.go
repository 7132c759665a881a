package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/store"
)

// Remote-access modes (docs/adr 28) live in relay settings, beside the
// device's unattended_allowed column: a device's own mode under
// deviceModeSetting+ID, a group's under groupModeSetting+NAME, each the
// DesktopPolicyMode's number ("" or 0: none, follow the group).
const (
	deviceModeSetting = "desktop-mode/device/"
	groupModeSetting  = "desktop-mode/group/"
)

// Short names of the modes, as audit lines and errors give them.
func modeName(m desksidev1.DesktopPolicyMode) string {
	switch m {
	case desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED:
		return "unattended"
	case desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE:
		return "unattended with notice"
	case desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED:
		return "attended"
	}
	return "group's"
}

// unattended reports whether m starts sessions without asking.
func unattended(m desksidev1.DesktopPolicyMode) bool {
	return m == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED ||
		m == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE
}

func (s *Server) readMode(ctx context.Context, name string) (desksidev1.DesktopPolicyMode, error) {
	b, err := s.store.GetRelaySetting(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED, nil
	} else if err != nil {
		return 0, storeErr(err)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || desksidev1.DesktopPolicyMode_name[int32(n)] == "" {
		return 0, status.Errorf(codes.DataLoss, "setting %s is unreadable (%q)", name, b)
	}
	return desksidev1.DesktopPolicyMode(n), nil
}

func (s *Server) writeMode(ctx context.Context, name string, m desksidev1.DesktopPolicyMode) error {
	if err := s.store.PutRelaySetting(ctx, name, []byte(strconv.Itoa(int(m)))); err != nil {
		return storeErr(err)
	}
	return nil
}

// desktopMode is the mode in force on d: the device's own (unattended
// when its unattended_allowed is set, as before modes existed), else its
// group's, else attended.
func (s *Server) desktopMode(ctx context.Context, d store.Device) (desksidev1.DesktopPolicyMode, error) {
	own, err := s.readMode(ctx, deviceModeSetting+d.ID)
	if err != nil {
		return 0, err
	}
	switch {
	case d.UnattendedAllowed && own == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE:
		return own, nil
	case d.UnattendedAllowed:
		return desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED, nil
	case own == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED:
		return own, nil
	}
	if d.Group != "" {
		g, err := s.readMode(ctx, groupModeSetting+d.Group)
		if err != nil {
			return 0, err
		}
		if g != desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED {
			return g, nil
		}
	}
	return desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED, nil
}

// tierNumber is the tier the consent prompt names: 1 to 3, an admin 3.
func tierNumber(r desksidev1.Role) uint32 {
	return uint32(min(max(r, desksidev1.Role_ROLE_TIER1), desksidev1.Role_ROLE_TIER3))
}

// sessionTicket checks the ticket a session is opened for: it exists and
// is not another device's.
func (s *Server) sessionTicket(ctx context.Context, code string, d store.Device) (string, error) {
	code = strings.ToUpper(strings.TrimSpace(wire.CleanString(code, 32)))
	if code == "" {
		return "", nil
	}
	t, err := s.store.GetTicket(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return "", status.Errorf(codes.InvalidArgument, "no ticket %s (deskside ticket list)", code)
	} else if err != nil {
		return "", storeErr(err)
	}
	if t.DeviceID != "" && t.DeviceID != d.ID {
		return "", status.Errorf(codes.InvalidArgument, "ticket %s is about device %s, not %s", code, t.DeviceID, d.ID)
	}
	return t.Code, nil
}
