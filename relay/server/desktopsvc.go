package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/bus"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/tickets"
)

// desktopSession is a remote-desktop session brokered by this relay.
type desktopSession struct {
	id, device, technician string
	control                bool
	started                time.Time
	// end stops the session from the relay's side (its technician was
	// disabled or deleted).
	end context.CancelCauseFunc
}

// errTechnicianEnded ends the desktop sessions of a technician an admin
// disabled or deleted.
var errTechnicianEnded = errors.New("the technician's account was disabled or deleted")

// sessions tracks live desktop sessions.
type sessions struct {
	mu       sync.Mutex
	byID     map[string]*desktopSession
	byDevice map[string]int
}

func newSessions() *sessions {
	return &sessions{byID: map[string]*desktopSession{}, byDevice: map[string]int{}}
}

// add registers a session unless the device already has max.
func (ss *sessions) add(s *desktopSession, max int) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byDevice[s.device] >= max {
		return false
	}
	ss.byID[s.id] = s
	ss.byDevice[s.device]++
	return true
}

func (ss *sessions) remove(s *desktopSession) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byID[s.id] == s {
		delete(ss.byID, s.id)
		ss.byDevice[s.device]--
		if ss.byDevice[s.device] == 0 {
			delete(ss.byDevice, s.device)
		}
	}
}

// endTechnician ends technician's sessions on this relay and returns how
// many there were.
func (ss *sessions) endTechnician(technician string) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for _, s := range ss.byID {
		if s.technician == technician && s.end != nil {
			s.end(errTechnicianEnded)
			n++
		}
	}
	return n
}

func (ss *sessions) get(id string) *desktopSession {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byID[id]
}

// TURN issues the credentials of a TURN relay for one desktop session:
// the built-in relay/turnserver or an external server sharing a secret
// (relay/service adapts both).
type TURN interface {
	// ICEServer returns the relay's URLs and credentials for session,
	// valid for ttl.
	ICEServer(session string, ttl time.Duration) *desksidev1.IceServer
	// EndSession ends session's allocations and credentials at once
	// where the server can (the built-in one); an external server's
	// credentials live out their ttl.
	EndSession(session string)
}

// iceServers returns the ICE servers for a session: the configured TURN
// relay, or none.
func (s *Server) iceServers(session string) []*desksidev1.IceServer {
	if s.turn == nil {
		return nil
	}
	return []*desksidev1.IceServer{s.turn.ICEServer(session, s.cfg.TURNCredentialTTL)}
}

// StartDesktopSession implements ConsoleService.StartDesktopSession.
func (c *consoleService) StartDesktopSession(req *desksidev1.StartDesktopSessionRequest, stream desksidev1.ConsoleService_StartDesktopSessionServer) error {
	ctx := stream.Context()
	s := c.s
	who := callerFrom(ctx).Name
	ec, err := envelopeCall(ctx)
	if err != nil {
		return err
	}
	if fp := req.GetViewerFingerprint(); fp != "" {
		if _, _, err := wire.ParseDTLSFingerprint(fp); err != nil {
			return status.Errorf(codes.InvalidArgument, "viewer_fingerprint: %v; update the console (the viewer sends its own certificate's fingerprint)", err)
		}
	}
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return err
	}
	mode := "view"
	if req.GetControl() {
		mode = "control"
		if err := s.needRole(ctx, desksidev1.Role_ROLE_TIER2, d.ID, "desktop control"); err != nil {
			return err
		}
	}
	policy, err := s.desktopMode(ctx, d)
	if err != nil {
		return err
	}
	if unattended(policy) {
		if err := s.needRole(ctx, desksidev1.Role_ROLE_TIER3, d.ID, "an unattended session (without the user's consent)"); err != nil {
			return err
		}
	}
	ticket, err := s.sessionTicket(ctx, req.GetTicketCode(), d)
	if err != nil {
		return err
	}
	if r := endpointRefusal(d, endpointtrust.Desktop); r != "" {
		s.audit(ctx, who, "desktop.refused", d.ID, mode+": "+r)
		return status.Errorf(codes.FailedPrecondition, "device %s: %s", d.ID, r)
	}
	// What allowed the session must stay true while it runs: recheckCaller
	// re-reads the technician and ends the session on every relay when
	// they lose the role or the device's group.
	require(ctx, func(me *caller) error {
		switch {
		case req.GetControl() && desksidev1.Role(me.Role) < desksidev1.Role_ROLE_TIER2:
			return status.Errorf(codes.PermissionDenied, "desktop control needs role tier2; you are now %s", roleName(desksidev1.Role(me.Role)))
		case unattended(policy) && desksidev1.Role(me.Role) < desksidev1.Role_ROLE_TIER3:
			return status.Errorf(codes.PermissionDenied, "an unattended session needs role tier3; you are now %s", roleName(desksidev1.Role(me.Role)))
		case !inScope(scopeOf(me), d.Group):
			return status.Errorf(codes.PermissionDenied, "device %s is no longer in your device groups", d.ID)
		}
		return nil
	})
	max := max(d.MaxSessions, 1)
	b := make([]byte, 12)
	rand.Read(b)
	sctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	sess := &desktopSession{id: "ses-" + hex.EncodeToString(b), device: d.ID, technician: who, control: req.GetControl(), started: s.cfg.Now(), end: end}
	if !s.sessions.add(sess, max) {
		s.audit(ctx, who, "desktop.refused", d.ID, fmt.Sprintf("%s: already %d session(s)", mode, max))
		return status.Errorf(codes.ResourceExhausted, "device %s already has %d remote session(s); an admin can allow more (deskside devices policy %s --max-sessions N)", d.ID, max, d.ID)
	}
	// The slot is freed as soon as the session is over, before its end
	// is audited and noted: a technician reconnecting at once is not
	// refused for the session that just ended.
	release := sync.OnceFunc(func() { s.sessions.remove(sess) })
	defer release()

	ice := s.iceServers(sess.id)
	if len(ice) > 0 {
		defer s.turn.EndSession(sess.id) // however the session ends
	}
	if req.GetRelayOnly() && len(ice) == 0 {
		return status.Error(codes.FailedPrecondition, "relay-only was asked for but this relay has no TURN server configured")
	}
	detail := fmt.Sprintf("%s session %s, %s", mode, sess.id, modeName(policy))
	if ticket != "" {
		detail += ", ticket " + ticket
	}
	s.audit(ctx, who, "desktop.start", d.ID, detail)
	reason := "viewer left"
	// shown: the user allowed the session or was not asked; its end is
	// then on the ticket's timeline too (a refusal is noted as the answer).
	shown := policy == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED
	defer func() {
		release()
		took := s.cfg.Now().Sub(sess.started).Round(time.Second)
		s.audit(context.WithoutCancel(ctx), who, "desktop.end", d.ID, fmt.Sprintf("%s session %s after %s: %s", mode, sess.id, took, reason))
		if ticket != "" && shown {
			s.noteOnTicket(ctx, ticket, fmt.Sprintf("Remote %s session on %s ended after %s: %s.", mode, d.ID, took, reason))
		}
	}()
	info := &desksidev1.DesktopSession{SessionId: sess.id, DeviceId: d.ID, Technician: who, Control: sess.control, Started: timestamppb.New(sess.started)}
	if err := stream.Send(&desksidev1.StartDesktopSessionResponse{Event: &desksidev1.StartDesktopSessionResponse_Started{Started: &desksidev1.DesktopStarted{
		Session: info, IceServers: ice, RelayOnly: req.GetRelayOnly(),
	}}}); err != nil {
		return err
	}
	var sendErr error
	err = s.bus.Stream(sctx, d.ID, s.signedCall(ctx, ec.GetEnvelope(), nil).wrap(&desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_StartDesktop{StartDesktop: &desksidev1.StartDesktop{
		SessionId: sess.id, Control: sess.control, IceServers: ice, RelayOnly: req.GetRelayOnly(), Monitor: req.GetMonitor(),
		ViewerFingerprint: req.GetViewerFingerprint(),
		TechnicianName:    who, TechnicianTier: tierNumber(desksidev1.Role(callerFrom(ctx).Role)), TicketCode: ticket, PolicyMode: policy,
	}}}, d.ID), func(m *desksidev1.AgentMessage) bool {
		switch b := m.GetBody().(type) {
		case *desksidev1.AgentMessage_DesktopSignal:
			if c := b.DesktopSignal.GetConsent(); c != nil {
				s.audit(ctx, who, "desktop.consent", d.ID, fmt.Sprintf("%s session %s: %s", mode, sess.id, consentName(c.GetAnswer())))
				switch c.GetAnswer() {
				case desksidev1.DesktopConsent_ANSWER_ALLOWED, desksidev1.DesktopConsent_ANSWER_NOTIFIED:
					shown = true
				}
				if ticket != "" {
					// On the ticket's timeline too, as an internal note.
					s.noteOnTicket(ctx, ticket, fmt.Sprintf("Remote %s session on %s: %s.", mode, d.ID, consentName(c.GetAnswer())))
				}
				return false // the end reason tells the viewer a refusal
			}
			sendErr = stream.Send(&desksidev1.StartDesktopSessionResponse{Event: &desksidev1.StartDesktopSessionResponse_Signal{Signal: b.DesktopSignal}})
			return sendErr != nil
		case *desksidev1.AgentMessage_DesktopEnded:
			reason = "agent: " + b.DesktopEnded.GetReason()
			release() // before the viewer hears of the end
			sendErr = stream.Send(&desksidev1.StartDesktopSessionResponse{Event: &desksidev1.StartDesktopSessionResponse_Ended{Ended: b.DesktopEnded}})
			return true
		case *desksidev1.AgentMessage_Error:
			reason = "agent: " + b.Error.GetMessage()
			sendErr = status.Errorf(codes.FailedPrecondition, "device %s: %s", d.ID, b.Error.GetMessage())
			return true
		}
		return false
	})
	switch {
	case sendErr != nil:
		return sendErr
	case errors.Is(err, bus.ErrNoRoute):
		reason = "device offline"
		return status.Errorf(codes.FailedPrecondition, "device %s is offline", d.ID)
	case err != nil && errors.Is(context.Cause(sctx), errTechnicianEnded):
		reason = "technician disabled or deleted"
		return status.Error(codes.Unauthenticated, "your account was disabled or deleted; the session ended")
	case err != nil && revoked(ctx) != nil:
		reason = "technician lost access: " + status.Convert(revoked(ctx)).Message()
		return revoked(ctx)
	case err != nil && ctx.Err() != nil:
		return nil // the viewer closed the session; the agent was told
	case err != nil:
		reason = err.Error()
		return agentErr(d.ID, err)
	}
	return nil
}

// noteOnTicket adds a desktop session's event to its ticket's timeline as
// an internal note by the session's technician.
func (s *Server) noteOnTicket(ctx context.Context, ticket, note string) {
	me := callerFrom(ctx)
	if _, err := s.tickets.Reply(context.WithoutCancel(ctx), tickets.Actor{Name: me.Name, Role: desksidev1.Role(me.Role)}, ticket, note, true); err != nil {
		s.log.Warn("desktop session event not noted on the ticket", "ticket", ticket, "err", err)
	}
}

// consentName is how the audit log names a consent answer.
func consentName(a desksidev1.DesktopConsent_Answer) string {
	switch a {
	case desksidev1.DesktopConsent_ANSWER_ALLOWED:
		return "allowed by the user"
	case desksidev1.DesktopConsent_ANSWER_DENIED:
		return "denied by the user"
	case desksidev1.DesktopConsent_ANSWER_NO_ANSWER:
		return "no answer (denied)"
	case desksidev1.DesktopConsent_ANSWER_NOTIFIED:
		return "the user was notified"
	}
	return "unknown answer " + a.String()
}

// SendDesktopSignal implements ConsoleService.SendDesktopSignal.
func (c *consoleService) SendDesktopSignal(ctx context.Context, req *desksidev1.SendDesktopSignalRequest) (*desksidev1.SendDesktopSignalResponse, error) {
	sig := req.GetSignal()
	sess := c.s.sessions.get(sig.GetSessionId())
	if sess == nil || sess.technician != callerFrom(ctx).Name {
		return nil, status.Error(codes.NotFound, "no such desktop session of yours (it may have ended)")
	}
	if sig.GetOffer() != "" {
		return nil, status.Error(codes.InvalidArgument, "the viewer sends answers and candidates, not offers")
	}
	if len(sig.GetAnswer()) > 64<<10 || len(sig.GetCandidate()) > 4<<10 {
		return nil, status.Error(codes.InvalidArgument, "signal too large")
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := bus.Request(rctx, c.s.bus, sess.device, &desksidev1.RelayMessage{Body: &desksidev1.RelayMessage_DesktopSignal{DesktopSignal: sig}})
	if err != nil {
		return nil, agentErr(sess.device, err)
	}
	if e := m.GetError(); e != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "device %s: %s", sess.device, e.GetMessage())
	}
	return &desksidev1.SendDesktopSignalResponse{}, nil
}

// SetDevicePolicy implements ConsoleService.SetDevicePolicy.
func (c *consoleService) SetDevicePolicy(ctx context.Context, req *desksidev1.SetDevicePolicyRequest) (*desksidev1.SetDevicePolicyResponse, error) {
	mode := req.GetMode()
	if desksidev1.DesktopPolicyMode_name[int32(mode)] == "" {
		return nil, status.Errorf(codes.InvalidArgument, "unknown mode %d", mode)
	}
	if req.GetGroup() != "" {
		return c.setGroupMode(ctx, req.GetGroup(), mode)
	}
	d, err := c.device(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	if req.GetMaxSessions() > 16 {
		return nil, status.Error(codes.InvalidArgument, "max_sessions must be at most 16")
	}
	allow := req.GetUnattendedAllowed()
	if req.Mode == nil {
		// Only unattended_allowed: keep the device's own attended or
		// with-notice mode where it agrees.
		own, err := c.s.readMode(ctx, deviceModeSetting+d.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case allow && own == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE:
			mode = own
		case allow:
			mode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED
		case own == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED:
			mode = own
		default:
			mode = desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED
		}
	}
	allow = unattended(mode)
	if err := c.s.writeMode(ctx, deviceModeSetting+d.ID, mode); err != nil {
		return nil, err
	}
	if err := c.s.store.SetDevicePolicy(ctx, d.ID, allow, int(req.GetMaxSessions())); err != nil {
		return nil, storeErr(err)
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "device.policy", d.ID, fmt.Sprintf("mode=%s unattended_allowed=%v max_sessions=%d", modeName(mode), allow, req.GetMaxSessions()))
	c.s.deviceChanged(ctx, d.ID)
	return &desksidev1.SetDevicePolicyResponse{}, nil
}

// setGroupMode sets the mode of a group's devices that have none.
func (c *consoleService) setGroupMode(ctx context.Context, group string, mode desksidev1.DesktopPolicyMode) (*desksidev1.SetDevicePolicyResponse, error) {
	g := strings.TrimSpace(wire.CleanString(group, 64))
	if g == "" || strings.Contains(g, "/") {
		return nil, status.Error(codes.InvalidArgument, "a group name without '/' is required")
	}
	if err := c.s.writeMode(ctx, groupModeSetting+g, mode); err != nil {
		return nil, err
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "group.desktop_policy", g, "mode="+modeName(mode))
	return &desksidev1.SetDevicePolicyResponse{}, nil
}
