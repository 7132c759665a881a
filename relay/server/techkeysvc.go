package server

// Technician keys and their certificates (relay/techkeys): the RPC
// adapter of OrgService's key methods, who may see and change whose keys,
// and the audit of each change.

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/orgchain"
	"github.com/deskside/deskside/relay/techkeys"
)

// orgKeyChainFingerprint is the fingerprint of the current key of the
// organisation key chain the relay holds, "" when it holds none. Unlike
// orgFingerprint, a chain that does not verify (or a store that does not
// answer) is an error, so certificates are refused rather than accepted
// unchecked.
func (s *Server) orgKeyChainFingerprint(ctx context.Context) (string, error) {
	_, u, err := s.readOrgKeys(ctx)
	if err != nil {
		return "", err
	}
	return orgchain.Fingerprint(u), nil
}

// keysErr is the console status of a techkeys error.
func keysErr(err error) error {
	switch {
	case errors.Is(err, techkeys.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, techkeys.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, techkeys.ErrTooMany):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, techkeys.ErrWrongOrg):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return storeErr(err)
}

// keysOf is whose keys a caller names: their own when technician is empty
// or theirs; anyone's for an admin.
func (c *orgService) keysOf(ctx context.Context, technician, what string) (string, error) {
	me := callerFrom(ctx)
	if technician == "" || technician == me.Name {
		return me.Name, nil
	}
	if desksidev1.Role(me.Role) < desksidev1.Role_ROLE_ADMIN {
		c.s.audit(ctx, me.Name, "access.denied", technician, what+" another technician's keys")
		return "", status.Errorf(codes.PermissionDenied, "only an admin may %s another technician's keys; you are %s (leave the name out for your own)",
			what, roleName(desksidev1.Role(me.Role)))
	}
	return technician, nil
}

// RegisterTechnicianKey implements OrgService.RegisterTechnicianKey: the
// caller's own key, waiting for an admin's certificate.
func (c *orgService) RegisterTechnicianKey(ctx context.Context, req *desksidev1.RegisterTechnicianKeyRequest) (*desksidev1.RegisterTechnicianKeyResponse, error) {
	me := callerFrom(ctx).Name
	key, created, err := c.s.techKeys.Register(ctx, me, req.GetPublicKey(), req.GetLabel())
	if err != nil {
		return nil, keysErr(err)
	}
	if created {
		c.s.audit(ctx, me, "technician.key.register", me, fmt.Sprintf("key %s (%s)", key.GetFingerprint(), key.GetLabel()))
	}
	return &desksidev1.RegisterTechnicianKeyResponse{Key: key}, nil
}

// ListTechnicianKeys implements OrgService.ListTechnicianKeys.
func (c *orgService) ListTechnicianKeys(ctx context.Context, req *desksidev1.ListTechnicianKeysRequest) (*desksidev1.ListTechnicianKeysResponse, error) {
	if req.GetAll() {
		me := callerFrom(ctx)
		if desksidev1.Role(me.Role) < desksidev1.Role_ROLE_ADMIN {
			c.s.audit(ctx, me.Name, "access.denied", "all", "list every technician's keys")
			return nil, status.Errorf(codes.PermissionDenied, "only an admin may list every technician's keys; you are %s (leave --all out for your own)",
				roleName(desksidev1.Role(me.Role)))
		}
		keys, err := c.s.techKeys.ListAll(ctx)
		if err != nil {
			return nil, keysErr(err)
		}
		return &desksidev1.ListTechnicianKeysResponse{Keys: keys}, nil
	}
	name, err := c.keysOf(ctx, req.GetTechnician(), "list")
	if err != nil {
		return nil, err
	}
	keys, err := c.s.techKeys.List(ctx, name)
	if err != nil {
		return nil, keysErr(err)
	}
	return &desksidev1.ListTechnicianKeysResponse{Keys: keys}, nil
}

// PublishCertificate implements OrgService.PublishCertificate (admin).
func (c *orgService) PublishCertificate(ctx context.Context, req *desksidev1.PublishCertificateRequest) (*desksidev1.PublishCertificateResponse, error) {
	res, err := c.s.techKeys.Publish(ctx, req.GetCertificate())
	if err != nil {
		return nil, keysErr(err)
	}
	b := res.Body
	detail := fmt.Sprintf("key %s, %s, groups %q, until %s, organisation key %s", res.Key.GetFingerprint(), envelope.TierName(b.GetTier()),
		b.GetGroups(), b.GetNotAfter().AsTime().UTC().Format("2006-01-02T15:04Z"), envelope.Fingerprint(b.GetOrgPublicKey()))
	if res.Registered {
		detail += ", key registered with the certificate"
	}
	if res.Replaced {
		detail += ", replaces the key's earlier certificate"
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "technician.key.certify", b.GetTechnician(), detail)
	return &desksidev1.PublishCertificateResponse{Key: res.Key}, nil
}

// DeleteTechnicianKey implements OrgService.DeleteTechnicianKey.
func (c *orgService) DeleteTechnicianKey(ctx context.Context, req *desksidev1.DeleteTechnicianKeyRequest) (*desksidev1.DeleteTechnicianKeyResponse, error) {
	name, err := c.keysOf(ctx, req.GetTechnician(), "delete")
	if err != nil {
		return nil, err
	}
	key, err := c.s.techKeys.Delete(ctx, name, req.GetFingerprint())
	if err != nil {
		return nil, keysErr(err)
	}
	detail := fmt.Sprintf("key %s (%s)", key.GetFingerprint(), key.GetLabel())
	if key.GetCertificate() != nil {
		detail += ", certified: the certificate stays valid on agents until it expires or is revoked (deskside technician revoke)"
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "technician.key.delete", name, detail)
	return &desksidev1.DeleteTechnicianKeyResponse{}, nil
}
