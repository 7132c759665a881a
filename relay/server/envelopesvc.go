package server

// Signed envelopes (docs/adr 22): the relay carries technicians'
// envelopes to agents and distributes the organisation's revocation list.
// It verifies nothing it could be trusted with: agents verify.

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
)

// revocationsKey names the revocation list among the relay settings.
const revocationsKey = "org.revocations"

// revocations returns the stored revocation list, nil if none.
func (s *Server) revocations(ctx context.Context) *desksidev1.RevocationList {
	b, err := s.store.GetRelaySetting(ctx, revocationsKey)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read revocation list", logKeyError, err)
		}
		return nil
	}
	l := &desksidev1.RevocationList{}
	if len(b) == 0 || proto.Unmarshal(b, l) != nil {
		return nil
	}
	return l
}

// envelopeCall returns the envelope a console call carries, nil if none.
func envelopeCall(ctx context.Context) (*desksidev1.EnvelopeCall, error) {
	vals := metadata.ValueFromIncomingContext(ctx, envelope.MetadataKey)
	if len(vals) == 0 {
		return nil, nil
	}
	c := &desksidev1.EnvelopeCall{}
	if err := proto.Unmarshal([]byte(vals[0]), c); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s: %v; update the CLI (deskside version)", envelope.MetadataKey, err)
	}
	return c, nil
}

// signedCall is what a console call's envelope adds to each request the
// relay sends for it, prepared once per call: the technician's envelope,
// the Merkle tree of a fan-out's devices (nil: one device, no proof needed
// beyond the index 0) and the revocation list, read once per call rather
// than once per device (a fan-out to 1,000 devices read it 1,000 times).
type signedCall struct {
	env  *desksidev1.SignedEnvelope
	tree *envelope.Tree
	revs *desksidev1.RevocationList
}

// signedCall prepares env's additions; env nil adds nothing.
func (s *Server) signedCall(ctx context.Context, env *desksidev1.SignedEnvelope, tree *envelope.Tree) signedCall {
	if env == nil {
		return signedCall{}
	}
	return signedCall{env: env, tree: tree, revs: s.revocations(ctx)}
}

// wrap adds the envelope, deviceID's proof of being in its list and the
// revocation list to the privileged request m. They are shared between
// the requests of a call and only read.
func (c signedCall) wrap(m *desksidev1.RelayMessage, deviceID string) *desksidev1.RelayMessage {
	if c.env == nil {
		return m
	}
	m.Envelope = c.env
	if c.tree != nil {
		m.DeviceProof = c.tree.Proof(deviceID)
	}
	m.Revocations = c.revs
	return m
}

// PublishRevocations implements OrgService.PublishRevocations. The
// relay checks only that the list is well formed and signed by the key it
// names; agents check that key against their pin.
type orgService struct {
	desksidev1.UnimplementedOrgServiceServer
	s *Server
}

func (c *orgService) PublishRevocations(ctx context.Context, req *desksidev1.PublishRevocationsRequest) (*desksidev1.PublishRevocationsResponse, error) {
	l := req.GetList()
	b := &desksidev1.RevocationListBody{}
	if err := proto.Unmarshal(l.GetBody(), b); err != nil {
		return nil, status.Error(codes.InvalidArgument, "revocation list: malformed; sign it with deskside technician revoke")
	}
	if _, err := envelope.ParseRevocations(b.GetOrgPublicKey(), l); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v; sign it with deskside technician revoke --org-key FILE", err)
	}
	if old := c.s.revocations(ctx); old != nil {
		ob := &desksidev1.RevocationListBody{}
		if proto.Unmarshal(old.GetBody(), ob) == nil && ob.GetSerial() >= b.GetSerial() {
			return nil, status.Errorf(codes.FailedPrecondition, "the relay holds revocation list %d; sign a newer one (deskside technician revoke fetches it first)", ob.GetSerial())
		}
	}
	raw, _ := proto.Marshal(l)
	if err := c.s.store.PutRelaySetting(ctx, revocationsKey, raw); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "org.revocations", envelope.Fingerprint(b.GetOrgPublicKey()),
		revocationText(b))
	return &desksidev1.PublishRevocationsResponse{}, nil
}

func revocationText(b *desksidev1.RevocationListBody) string {
	return fmt.Sprintf("serial %d, technicians %q, %d certificates", b.GetSerial(), b.GetTechnicians(), len(b.GetCertificateSerials()))
}

// GetRevocations implements OrgService.GetRevocations.
func (c *orgService) GetRevocations(ctx context.Context, _ *desksidev1.GetRevocationsRequest) (*desksidev1.GetRevocationsResponse, error) {
	return &desksidev1.GetRevocationsResponse{List: c.s.revocations(ctx)}, nil
}
