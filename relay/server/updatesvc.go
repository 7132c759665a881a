package server

import (
	"context"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
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
	err = c.exchange(ctx, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_UpdateOffer{UpdateOffer: &desksidev1.UpdateOffer{Release: rel}}},
		func(m *desksidev1.AgentMessage) bool {
			st := m.GetUpdateStatus()
			if st == nil {
				st = &desksidev1.UpdateStatus{State: desksidev1.UpdateState_UPDATE_STATE_REFUSED, Reason: "agent: " + m.GetError().GetMessage()}
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

// recordLastUpdate stores how the agent says its last update ended.
func (s *Server) recordLastUpdate(ctx context.Context, id string, st *desksidev1.UpdateStatus) {
	if st == nil {
		return
	}
	// Hello repeats the last outcome on every connection: it must not
	// overwrite what the agent said about a later offer.
	if cur, ok, err := s.updates.State(ctx, id); err != nil || ok && cur.Version != st.GetVersion() {
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
