package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire/envelope"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/updates"
)

// updateChunk is the size of the UpdateChunks the relay sends (the agent
// takes at most 1 MiB).
const updateChunk = 256 << 10

// updatePushers bounds how many connected agents StartRollout offers a
// release to at once.
const updatePushers = 32

// Updates is the relay's agent releases and rollout (relay/updates).
func (s *Server) Updates() *updates.Updates { return s.updates }

// offerUpdate offers the rollout's release to the device of c when
// relay/updates says so, streams the executable once the agent accepts,
// and records each status the agent reports.
func (s *Server) offerUpdate(ctx context.Context, c *agentConn) {
	d, err := s.store.GetDevice(ctx, c.id)
	if err != nil {
		return
	}
	rel, exe, err := s.updates.Offer(ctx, updates.Device{ID: d.ID, Version: d.AgentVersion, OS: d.OS, Arch: d.Arch, Group: d.Group})
	if err != nil {
		s.log.Error("update offer", logKeyDevice, c.id, logKeyError, err)
		return
	}
	if rel == nil {
		return
	}
	// An agent that refuses an offer before it could read the manifest
	// (no release pin, another key) names no version: the refusal is of
	// the version offered, and is recorded as such.
	offered := &desksidev1.ReleaseManifest{}
	_ = proto.Unmarshal(rel.GetManifest(), offered)
	err = c.exchange(ctx, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_UpdateOffer{UpdateOffer: &desksidev1.UpdateOffer{Release: rel}}},
		func(m *desksidev1.AgentMessage) bool {
			st := m.GetUpdateStatus()
			if st == nil {
				st = &desksidev1.UpdateStatus{State: desksidev1.UpdateState_UPDATE_STATE_REFUSED, Reason: "agent: " + m.GetError().GetMessage()}
			}
			if st.GetVersion() == "" {
				st = &desksidev1.UpdateStatus{Version: offered.GetVersion(), State: st.GetState(), Reason: st.GetReason()}
			}
			if err := s.updates.Record(ctx, c.id, st); err != nil {
				s.log.Error("update state not stored", logKeyDevice, c.id, logKeyError, err)
			}
			if st.GetState() != desksidev1.UpdateState_UPDATE_STATE_DOWNLOADING {
				return true
			}
			for off := 0; off < len(exe); off += updateChunk {
				if err := c.send(&desksidev1.RelayMessage{RefId: m.GetId(), Body: &desksidev1.RelayMessage_UpdateChunk{UpdateChunk: &desksidev1.UpdateChunk{
					Offset: uint64(off), Data: exe[off:min(off+updateChunk, len(exe))],
				}}}); err != nil {
					return true
				}
			}
			return false
		})
	if err != nil {
		s.log.Debug("update offer ended", logKeyDevice, c.id, logKeyError, err)
	}
}

// recordLastUpdate records what a connecting agent's Hello says about
// updates: running the version it was offered means it is installed (the
// agent's own "installed" may not have left before it restarted), and
// last_update tells how the last one ended (a rollback).
func (s *Server) recordLastUpdate(ctx context.Context, id string, hello *desksidev1.Hello) {
	cur, ok, err := s.updates.State(ctx, id)
	if err != nil {
		return
	}
	st := hello.GetLastUpdate()
	switch {
	case ok && cur.Version == hello.GetAgentVersion() && cur.State != desksidev1.UpdateState_UPDATE_STATE_INSTALLED:
		st = &desksidev1.UpdateStatus{Version: cur.Version, State: desksidev1.UpdateState_UPDATE_STATE_INSTALLED}
	case st == nil:
		return
	case ok && cur.Version != st.GetVersion():
		// Hello repeats the last outcome on every connection: it must
		// not overwrite what the agent said about a later offer.
		return
	case ok && cur.State == st.GetState():
		return
	}
	if err := s.updates.Record(ctx, id, st); err != nil {
		s.log.Error("update state not stored", logKeyDevice, id, logKeyError, err)
	}
}

// StartRollout sets the rollout and offers its release to the agents
// connected to this relay that it includes (the others get it when they
// connect).
func (s *Server) StartRollout(ctx context.Context, r updates.Rollout) error {
	if err := s.updates.SetRollout(ctx, r); err != nil {
		return err
	}
	s.mu.Lock()
	conns := make([]*agentConn, 0, len(s.conns))
	for _, c := range s.conns {
		if c.orgReady.Load() { // past Welcome
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	sem := make(chan struct{}, updatePushers)
	for _, c := range conns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			s.offerUpdate(c.ctx, c)
		}()
	}
	return nil
}

// getUpdatesPage is GetUpdates' page of device states when the request
// names none; maxUpdatesPage the most it takes.
const (
	getUpdatesPage = 1000
	maxUpdatesPage = 5000
)

// updateService is the thin RPC adapter of relay/updates.
type updateService struct {
	desksidev1.UnimplementedUpdateServiceServer
	s *Server
}

func updatesErr(err error) error {
	switch {
	case errors.Is(err, updates.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, updates.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	return storeErr(err)
}

// UploadRelease implements UpdateService.UploadRelease.
func (c *updateService) UploadRelease(st desksidev1.UpdateService_UploadReleaseServer) error {
	ctx := st.Context()
	first, err := st.Recv()
	if err != nil {
		return err
	}
	rel := first.GetRelease()
	m := &desksidev1.ReleaseManifest{}
	if rel == nil || proto.Unmarshal(rel.GetManifest(), m) != nil {
		return status.Error(codes.InvalidArgument, "the first message must carry the signed manifest (deskside release upload FILE)")
	}
	if m.GetSize() > updates.MaxBinary {
		return status.Errorf(codes.InvalidArgument, "the manifest signs %d bytes, more than agents accept (%d)", m.GetSize(), updates.MaxBinary)
	}
	exe := make([]byte, 0, m.GetSize())
	exe = append(exe, first.GetData()...)
	for uint64(len(exe)) <= m.GetSize() {
		r, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		exe = append(exe, r.GetData()...)
	}
	got, err := c.s.updates.Upload(ctx, rel, exe)
	if err != nil {
		return updatesErr(err)
	}
	if err := c.s.updates.Listed(ctx, got); err != nil {
		return storeErr(err)
	}
	fp := envelope.Fingerprint(got.GetReleasePublicKey())
	c.s.audit(ctx, callerFrom(ctx).Name, "release.upload", got.GetVersion(),
		fmt.Sprintf("%s/%s, %d bytes, release key %s", got.GetOs(), got.GetArch(), got.GetSize(), fp))
	return st.SendAndClose(&desksidev1.UploadReleaseResponse{Version: got.GetVersion(), Os: got.GetOs(), Arch: got.GetArch(), ReleaseKeyFingerprint: fp})
}

// StartRollout implements UpdateService.StartRollout. A dry run checks
// the rollout and counts its devices without starting it (not audited).
func (c *updateService) StartRollout(ctx context.Context, req *desksidev1.StartRolloutRequest) (*desksidev1.StartRolloutResponse, error) {
	r := updates.Rollout{Version: req.GetVersion(), OS: req.GetOs(), Arch: req.GetArch(), Percent: int(min(req.GetPercent(), 101)), Group: req.GetGroup()}
	if req.GetDryRun() {
		if err := c.s.updates.Check(ctx, r); err != nil {
			return nil, updatesErr(err)
		}
		p, err := c.s.rolloutScope(ctx, r)
		if err != nil {
			return nil, storeErr(err)
		}
		return &desksidev1.StartRolloutResponse{Scope: p}, nil
	}
	if err := c.s.StartRollout(ctx, r); err != nil {
		return nil, updatesErr(err)
	}
	who := fmt.Sprintf("%d %%", r.Percent)
	if r.Group != "" {
		who = "group " + r.Group
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "release.rollout", r.Version, fmt.Sprintf("%s/%s to %s", r.OS, r.Arch, who))
	p, err := c.s.rolloutScope(ctx, r)
	if err != nil {
		return nil, storeErr(err)
	}
	return &desksidev1.StartRolloutResponse{Scope: p}, nil
}

// rolloutScope counts the enrolled devices r selects (relay/updates.Scope).
func (s *Server) rolloutScope(ctx context.Context, r updates.Rollout) (*desksidev1.RolloutProgress, error) {
	devs, _, err := s.store.ListDevices(ctx, store.DeviceFilter{})
	if err != nil {
		return nil, err
	}
	sd := make([]updates.ScopeDevice, len(devs))
	for i, d := range devs {
		sd[i] = updates.ScopeDevice{Device: updates.Device{ID: d.ID, Version: d.AgentVersion, OS: d.OS, Arch: d.Arch, Group: d.Group},
			Hostname: d.Hostname, Online: d.Online}
	}
	return s.updates.Scope(ctx, r, sd)
}

// rolloutStarter names who started r: the newest release.rollout audit
// event of its version since it started ("" if none).
func (s *Server) rolloutStarter(ctx context.Context, r *updates.Rollout) string {
	evs, err := s.store.ListAudit(ctx, store.AuditFilter{Action: "release.rollout", Target: r.Version, Since: r.Started.Add(-time.Second), Limit: 1})
	if err != nil || len(evs) == 0 {
		return ""
	}
	return evs[0].Actor
}

// GetUpdates implements UpdateService.GetUpdates.
func (c *updateService) GetUpdates(ctx context.Context, req *desksidev1.GetUpdatesRequest) (*desksidev1.GetUpdatesResponse, error) {
	u := c.s.updates
	r, err := u.Rollout(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.GetUpdatesResponse{}
	if r != nil {
		resp.Rollout = &desksidev1.StartRolloutRequest{Version: r.Version, Os: r.OS, Arch: r.Arch, Percent: uint32(r.Percent), Group: r.Group}
		resp.Started = timestamppb.New(r.Started)
		resp.StartedBy = c.s.rolloutStarter(ctx, r)
		if resp.Progress, err = c.s.rolloutScope(ctx, *r); err != nil {
			return nil, storeErr(err)
		}
	}
	if req.GetWithoutDevices() {
		return resp, nil
	}
	// One page of device states, in id order.
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = getUpdatesPage
	case size > maxUpdatesPage:
		return nil, status.Errorf(codes.InvalidArgument, "page_size %d: at most %d device states a page", size, maxUpdatesPage)
	}
	page, err := u.ListStates(ctx, req.GetPageToken(), size)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, st := range page {
		resp.Devices = append(resp.Devices, &desksidev1.DeviceUpdate{DeviceId: st.DeviceID, At: timestamppb.New(st.At),
			Status: &desksidev1.UpdateStatus{Version: st.Version, State: st.State, Reason: st.Reason}})
	}
	if len(page) == size {
		resp.NextPageToken = page[len(page)-1].DeviceID
	}
	return resp, nil
}

// ListReleases implements UpdateService.ListReleases.
func (c *updateService) ListReleases(ctx context.Context, _ *desksidev1.ListReleasesRequest) (*desksidev1.ListReleasesResponse, error) {
	rels, err := c.s.updates.Releases(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.ListReleasesResponse{}
	for _, r := range rels {
		m := r.Manifest
		out := &desksidev1.Release{Version: m.GetVersion(), Os: m.GetOs(), Arch: m.GetArch(), Size: m.GetSize(), Sha256: m.GetSha256(),
			ReleaseKeyFingerprint: envelope.Fingerprint(m.GetReleasePublicKey()), IssuedAt: m.GetIssuedAt()}
		if !r.Uploaded.IsZero() {
			out.UploadedAt = timestamppb.New(r.Uploaded)
		}
		resp.Releases = append(resp.Releases, out)
	}
	return resp, nil
}
