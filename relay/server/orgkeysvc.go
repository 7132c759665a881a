package server

// The organisation key chain (docs/adr 22): admins publish statements the
// organisation key signed (relay/orgchain keeps the rules), and the relay
// hands the chain to every agent after Welcome and whenever it changes.
// Each relay re-reads the chain from the store every
// Config.OrgKeyRefresh (and at once on the relay that took the
// PublishOrgKey call), so agents behind every relay sharing the store get
// a new statement within that bound, whatever the bus.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/orgchain"
	"github.com/deskside/deskside/relay/store"
)

// orgKeysKey names the chain (a marshalled OrgKeyUpdate) among the relay
// settings.
const orgKeysKey = "org.keys"

// orgKeyPushers bounds the streams a chain change is sent to at once.
const orgKeyPushers = 32

// orgKeyCache is this relay's copy of the stored chain.
type orgKeyCache struct {
	mu     sync.Mutex
	loaded bool
	raw    []byte
	update *desksidev1.OrgKeyUpdate // nil: none, or a stored chain that does not verify
	fp     string
}

// readOrgKeys reads and verifies the stored chain; an empty chain when
// none was published.
func (s *Server) readOrgKeys(ctx context.Context) (raw []byte, u *desksidev1.OrgKeyUpdate, err error) {
	raw, err = s.store.GetRelaySetting(ctx, orgKeysKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &desksidev1.OrgKeyUpdate{}, nil
	} else if err != nil {
		return nil, nil, err
	}
	u = &desksidev1.OrgKeyUpdate{}
	if err := proto.Unmarshal(raw, u); err != nil {
		return raw, nil, fmt.Errorf("relay setting %s: %w", orgKeysKey, err)
	}
	if _, err := orgchain.Current(u); err != nil {
		return raw, nil, fmt.Errorf("relay setting %s: %w", orgKeysKey, err)
	}
	return raw, u, nil
}

// refreshOrgKeys reads the chain from the store into the cache and, when
// it changed, sends it to the agents connected to this relay. It returns
// the current fingerprint ("" for none).
func (s *Server) refreshOrgKeys(ctx context.Context) string {
	c := &s.orgKeys
	raw, u, err := s.readOrgKeys(ctx)
	c.mu.Lock()
	if err != nil && raw == nil {
		// The store is unavailable: keep what we have.
		fp := c.fp
		c.mu.Unlock()
		if ctx.Err() == nil {
			s.log.Error("read the organisation key chain", logKeyError, err)
		}
		return fp
	}
	if c.loaded && bytes.Equal(raw, c.raw) {
		fp := c.fp
		c.mu.Unlock()
		return fp
	}
	if err != nil {
		// Agents would refuse it anyway; say so once per change.
		s.log.Error("the stored organisation key chain does not verify; agents are not sent it (restore the setting from a backup, or publish again)", logKeyError, err)
		u = nil
	}
	if len(u.GetStatements()) == 0 {
		u = nil
	}
	c.loaded, c.raw, c.update, c.fp = true, raw, u, orgchain.Fingerprint(u)
	fp := c.fp
	c.mu.Unlock()
	if u != nil {
		s.pushOrgKeys(u)
	}
	return fp
}

// orgFingerprint returns the fingerprint of the organisation key the
// relay's chain makes current, read from the store, "" when no key was
// published (or the store is unavailable and nothing was read before).
func (s *Server) orgFingerprint(ctx context.Context) string {
	return s.refreshOrgKeys(ctx)
}

// cachedOrgKeys returns this relay's copy of the chain, loading it on
// first use; nil when there is none.
func (s *Server) cachedOrgKeys(ctx context.Context) *desksidev1.OrgKeyUpdate {
	c := &s.orgKeys
	c.mu.Lock()
	loaded := c.loaded
	c.mu.Unlock()
	if !loaded {
		s.refreshOrgKeys(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.update
}

// sendOrgKeys marks a new stream ready for chain updates, then sends it the
// chain. Marking first means a change is either pushed to this stream or
// already in the cache read here (or both: agents take a chain twice
// without harm).
func (s *Server) sendOrgKeys(c *agentConn) error {
	c.orgReady.Store(true)
	u := s.cachedOrgKeys(c.ctx)
	if u == nil {
		return nil
	}
	return c.send(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_OrgKeyUpdate{OrgKeyUpdate: u}})
}

// pushOrgKeys sends u to every stream on this relay past its Welcome, a
// few at a time so a slow agent delays none but itself and its batch.
func (s *Server) pushOrgKeys(u *desksidev1.OrgKeyUpdate) {
	s.mu.Lock()
	conns := make([]*agentConn, 0, len(s.conns))
	for _, c := range s.conns {
		if c.orgReady.Load() {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	s.log.Info("sending the organisation key chain to the connected agents", "agents", len(conns), "fingerprint", orgchain.Fingerprint(u))
	sem := make(chan struct{}, orgKeyPushers)
	for _, c := range conns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			// A failed send ends that stream's Recv too; it gets the chain
			// when it reconnects.
			if err := c.send(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_OrgKeyUpdate{OrgKeyUpdate: u}}); err != nil {
				s.log.Debug("organisation key chain not sent", logKeyDevice, c.id, logKeyError, err)
			}
		}()
	}
}

// watchOrgKeys re-reads the chain every Config.OrgKeyRefresh until ctx
// ends, so a statement published on another relay reaches this relay's
// agents.
func (s *Server) watchOrgKeys(ctx context.Context) {
	every(ctx, s.cfg.OrgKeyRefresh, func() bool { s.refreshOrgKeys(ctx); return true })
}

// PublishOrgKey implements OrgService.PublishOrgKey.
func (c *orgService) PublishOrgKey(ctx context.Context, req *desksidev1.PublishOrgKeyRequest) (*desksidev1.PublishOrgKeyResponse, error) {
	s := c.s
	st := req.GetStatement()
	if st == nil {
		return nil, status.Error(codes.InvalidArgument, "no statement: sign one with deskside org publish --org-key FILE")
	}
	raw, cur, err := s.readOrgKeys(ctx)
	switch {
	case err != nil && raw == nil:
		return nil, storeErr(err)
	case err != nil:
		return nil, status.Errorf(codes.FailedPrecondition, "%v; restore it from a backup before publishing", err)
	}
	next, change, err := orgchain.Append(cur, st)
	if err != nil {
		code := codes.FailedPrecondition
		if errors.Is(err, orgchain.ErrBadStatement) {
			code = codes.InvalidArgument
		}
		return nil, status.Error(code, err.Error())
	}
	fp := orgchain.Fingerprint(next)
	if change == orgchain.Unchanged {
		return &desksidev1.PublishOrgKeyResponse{Fingerprint: fp}, nil
	}
	raw, err = proto.Marshal(next)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := s.store.PutRelaySetting(ctx, orgKeysKey, raw); err != nil {
		return nil, storeErr(err)
	}
	who := callerFrom(ctx).Name
	if change == orgchain.Published {
		s.audit(ctx, who, "org.key.publish", fp, "first organisation key; agents that pin none and had none from their enrollment token pin it")
	} else {
		prev := next.GetStatements()[len(next.GetStatements())-2]
		s.audit(ctx, who, "org.key.handover", fp, fmt.Sprintf("hand-over %d, signed by the previous key %s", len(next.GetStatements())-1, statementKey(prev)))
	}
	s.refreshOrgKeys(context.WithoutCancel(ctx))
	return &desksidev1.PublishOrgKeyResponse{Fingerprint: fp}, nil
}

// statementKey is the fingerprint of the key a verified statement makes
// current.
func statementKey(st *desksidev1.OrgKeyStatement) string {
	b := &desksidev1.OrgKeyStatementBody{}
	if proto.Unmarshal(st.GetBody(), b) != nil {
		return "?"
	}
	return envelope.Fingerprint(b.GetNewPublicKey())
}

// GetOrgKey implements OrgService.GetOrgKey.
func (c *orgService) GetOrgKey(ctx context.Context, _ *desksidev1.GetOrgKeyRequest) (*desksidev1.GetOrgKeyResponse, error) {
	raw, u, err := c.s.readOrgKeys(ctx)
	switch {
	case err != nil && raw == nil:
		return nil, storeErr(err)
	case err != nil:
		return nil, status.Errorf(codes.DataLoss, "%v; restore it from a backup, or publish the key again", err)
	}
	return &desksidev1.GetOrgKeyResponse{Fingerprint: orgchain.Fingerprint(u), Statements: u.GetStatements()}, nil
}
