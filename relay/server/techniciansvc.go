package server

// TechnicianService: the thin adapter of relay/technicians. It maps
// requests and errors, audits every change (and every refused one), and
// forgets a deleted technician's keys. Who may call what is the role
// table's (authz.go): everything here is admin's but ChangePassword.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/technicians"
	"github.com/deskside/deskside/relay/tickets"
)

type technicianService struct {
	desksidev1.UnimplementedTechnicianServiceServer
	s *Server
}

// accountProto is a technician as an admin sees it.
func (c *technicianService) accountProto(t store.Technician) *desksidev1.TechnicianAccount {
	a := &desksidev1.TechnicianAccount{
		Name: t.Name, Role: desksidev1.Role(t.Role), Groups: t.Groups, Disabled: t.Disabled,
		MustChangePassword: t.MustChangePassword, TotpEnabled: t.TOTPSecret != "",
		FailedLogins: uint32(max(t.FailedLogins, 0)), CreatedAt: timestamppb.New(t.CreatedAt), Email: t.Email,
	}
	if c.s.cfg.Now().Before(t.LockedUntil) {
		a.LockedUntil = timestamppb.New(t.LockedUntil)
	}
	return a
}

// accountsErr maps relay/technicians errors to statuses whose messages
// name the next step.
func accountsErr(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, technicians.ErrInvalid), errors.Is(err, technicians.ErrWeakPassword):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, technicians.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: check the name with `deskside technician list`", msg)
	case errors.Is(err, technicians.ErrExists):
		return status.Errorf(codes.AlreadyExists, "%s: choose another name, or change theirs with `deskside technician set`", msg)
	case errors.Is(err, technicians.ErrSelf):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, technicians.ErrLastAdmin):
		return status.Errorf(codes.FailedPrecondition, "%s: make another technician admin first (`deskside technician set NAME --role admin`)", msg)
	case errors.Is(err, technicians.ErrWrongPassword):
		return status.Errorf(codes.InvalidArgument, "%s: type your current password again", msg)
	case errors.Is(err, technicians.ErrLocked):
		return status.Errorf(codes.PermissionDenied, "%s; an admin can unlock it (`deskside technician unlock NAME`)", msg)
	}
	return storeErr(err)
}

// refused audits a refused change and returns its status.
func (c *technicianService) refused(ctx context.Context, action, target string, err error) error {
	c.s.audit(ctx, callerFrom(ctx).Name, action+".refused", target, err.Error())
	return accountsErr(err)
}

// name is a request's technician name, as the store keys it.
func requestName(raw string) (string, error) {
	name := wire.CleanString(raw, maxNameLength)
	if name == "" {
		return "", status.Error(codes.InvalidArgument, "a technician name is required (see `deskside technician list`)")
	}
	return name, nil
}

func groupsText(g []string) string {
	if len(g) == 0 {
		return "all groups"
	}
	return "groups " + strings.Join(g, ", ")
}

// ListTechnicians implements TechnicianService.ListTechnicians.
func (c *technicianService) ListTechnicians(ctx context.Context, _ *desksidev1.ListTechniciansRequest) (*desksidev1.ListTechniciansResponse, error) {
	ts, err := c.s.accounts.List(ctx)
	if err != nil {
		return nil, accountsErr(err)
	}
	resp := &desksidev1.ListTechniciansResponse{}
	for _, t := range ts {
		resp.Technicians = append(resp.Technicians, c.accountProto(t))
	}
	return resp, nil
}

// ListAssignees implements TechnicianService.ListAssignees: the enabled
// technicians whose tier reaches the ticket tier asked (tickets.Actor's
// tier: admins count as 3), names and roles only.
func (c *technicianService) ListAssignees(ctx context.Context, req *desksidev1.ListAssigneesRequest) (*desksidev1.ListAssigneesResponse, error) {
	if req.GetTier() > 3 {
		return nil, status.Errorf(codes.InvalidArgument, "tier %d: tickets are in tier 1, 2 or 3 (0 for any)", req.GetTier())
	}
	ts, err := c.s.accounts.List(ctx)
	if err != nil {
		return nil, accountsErr(err)
	}
	resp := &desksidev1.ListAssigneesResponse{}
	for _, t := range ts {
		a := tickets.Actor{Name: t.Name, Role: desksidev1.Role(t.Role)}
		if t.Disabled || a.Tier() < int(req.GetTier()) {
			continue
		}
		resp.Assignees = append(resp.Assignees, &desksidev1.Assignee{Name: t.Name, Role: desksidev1.Role(t.Role)})
	}
	return resp, nil
}

// CreateTechnician implements TechnicianService.CreateTechnician.
func (c *technicianService) CreateTechnician(ctx context.Context, req *desksidev1.CreateTechnicianRequest) (*desksidev1.CreateTechnicianResponse, error) {
	name := req.GetName()
	t, generated, err := c.s.accounts.Create(ctx, technicians.NewAccount{
		Name: name, Role: int(req.GetRole()), Groups: req.GetGroups(), Password: req.GetPassword(),
	})
	if err != nil {
		return nil, c.refused(ctx, "technician.create", wire.CleanString(name, maxNameLength), err)
	}
	how := "password given by the admin"
	if generated != "" {
		how = "password generated"
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "technician.create", t.Name,
		fmt.Sprintf("role %s, %s, %s; must change it at first sign-in", technicians.RoleName(t.Role), groupsText(t.Groups), how))
	return &desksidev1.CreateTechnicianResponse{Technician: c.accountProto(t), Password: generated}, nil
}

// UpdateTechnician implements TechnicianService.UpdateTechnician.
func (c *technicianService) UpdateTechnician(ctx context.Context, req *desksidev1.UpdateTechnicianRequest) (*desksidev1.UpdateTechnicianResponse, error) {
	name, err := requestName(req.GetName())
	if err != nil {
		return nil, err
	}
	var ch technicians.Change
	if r := int(req.GetRole()); r != 0 {
		ch.Role = &r
	}
	if req.GetSetGroups() {
		g := req.GetGroups()
		ch.Groups = &g
	}
	if ch.Role == nil && ch.Groups == nil {
		return nil, status.Error(codes.InvalidArgument, "nothing to change: give a role or groups (`deskside technician set NAME --role tier2 --groups a,b`)")
	}
	before, after, err := c.s.accounts.Update(ctx, name, ch)
	if err != nil {
		return nil, c.refused(ctx, "technician.update", name, err)
	}
	var what []string
	if before.Role != after.Role {
		what = append(what, fmt.Sprintf("role %s → %s", technicians.RoleName(before.Role), technicians.RoleName(after.Role)))
	}
	if groupsText(before.Groups) != groupsText(after.Groups) {
		what = append(what, fmt.Sprintf("%s → %s", groupsText(before.Groups), groupsText(after.Groups)))
	}
	if len(what) == 0 {
		what = append(what, "no change")
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "technician.update", name, strings.Join(what, "; "))
	return &desksidev1.UpdateTechnicianResponse{Technician: c.accountProto(after)}, nil
}

// SetTechnicianDisabled implements TechnicianService.SetTechnicianDisabled.
func (c *technicianService) SetTechnicianDisabled(ctx context.Context, req *desksidev1.SetTechnicianDisabledRequest) (*desksidev1.SetTechnicianDisabledResponse, error) {
	name, err := requestName(req.GetName())
	if err != nil {
		return nil, err
	}
	action := "technician.enable"
	if req.GetDisabled() {
		action = "technician.disable"
	}
	t, ended, err := c.s.accounts.SetDisabled(ctx, callerFrom(ctx).Name, name, req.GetDisabled())
	if err != nil {
		return nil, c.refused(ctx, action, name, err)
	}
	detail := "can sign in again"
	if req.GetDisabled() {
		detail = fmt.Sprintf("%d sessions ended, %d remote-desktop sessions on this relay", ended, c.s.sessions.endTechnician(name))
	}
	c.s.audit(ctx, callerFrom(ctx).Name, action, name, detail)
	return &desksidev1.SetTechnicianDisabledResponse{Technician: c.accountProto(t), SessionsEnded: uint32(ended)}, nil
}

// DeleteTechnician implements TechnicianService.DeleteTechnician. The
// technician's keys registered on the relay go too; certificates agents
// already hold stay valid until they expire or the organisation revokes
// them (deskside technician revoke), which the response's audit detail
// and the CLI say.
func (c *technicianService) DeleteTechnician(ctx context.Context, req *desksidev1.DeleteTechnicianRequest) (*desksidev1.DeleteTechnicianResponse, error) {
	name, err := requestName(req.GetName())
	if err != nil {
		return nil, err
	}
	t, err := c.s.accounts.Get(ctx, name)
	if err != nil {
		return nil, c.refused(ctx, "technician.delete", name, err)
	}
	ended, err := c.s.accounts.Delete(ctx, callerFrom(ctx).Name, name)
	if err != nil {
		return nil, c.refused(ctx, "technician.delete", name, err)
	}
	detail := fmt.Sprintf("role %s; %d sessions ended, %d remote-desktop sessions on this relay", technicians.RoleName(t.Role), ended, c.s.sessions.endTechnician(name))
	if keys, err := c.s.techKeys.Forget(ctx, name); err != nil {
		c.s.log.Error("forget a deleted technician's keys", logKeyTech, name, logKeyError, err)
		detail += "; their keys could not be removed: " + err.Error()
	} else if len(keys) > 0 {
		detail += fmt.Sprintf("; %d keys removed from the relay", len(keys))
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "technician.delete", name, detail)
	return &desksidev1.DeleteTechnicianResponse{SessionsEnded: uint32(ended)}, nil
}

// ChangePassword implements TechnicianService.ChangePassword: the
// caller's own password; their other sessions end.
func (c *technicianService) ChangePassword(ctx context.Context, req *desksidev1.ChangePasswordRequest) (*desksidev1.ChangePasswordResponse, error) {
	me := callerFrom(ctx)
	leave, err := c.s.guard.accounts.Enter(ctx, me.Name)
	if err != nil {
		return nil, status.FromContextError(err).Err()
	}
	defer leave()
	ended, err := c.s.accounts.ChangePassword(ctx, me.Name, req.GetCurrentPassword(), req.GetNewPassword(), me.session.TokenHash)
	if err != nil {
		if errors.Is(err, technicians.ErrWrongPassword) || errors.Is(err, technicians.ErrLocked) {
			c.s.audit(ctx, me.Name, "technician.password_change.failed", me.Name, err.Error())
			return nil, accountsErr(err)
		}
		return nil, c.refused(ctx, "technician.password_change", me.Name, err)
	}
	c.s.audit(ctx, me.Name, "technician.password_change", me.Name, fmt.Sprintf("%d other sessions ended", ended))
	return &desksidev1.ChangePasswordResponse{SessionsEnded: uint32(ended)}, nil
}
