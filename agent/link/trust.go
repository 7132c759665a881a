package link

import (
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// trustReporter is a Guard that can say what the endpoint enforces
// (agent/orgtrust.Guard).
type trustReporter interface {
	Trust() *desksidev1.EndpointTrust
}

// endpointTrust is what the Guard enforces, remembered as sent on this
// stream (Hello carries it); nil without a Guard that reports it.
func (s *session) endpointTrust() *desksidev1.EndpointTrust {
	tr, ok := s.l.cfg.Guard.(trustReporter)
	if !ok {
		return nil
	}
	t := tr.Trust()
	s.trustSent = t
	return t
}

// sendTrustIfChanged reports the endpoint trust again when it differs
// from what this stream last reported (a policy or pin changed while
// connected). It runs on every health interval tick; the Guard makes the
// check cheap (a stat of the policy file).
func (s *session) sendTrustIfChanged() error {
	tr, ok := s.l.cfg.Guard.(trustReporter)
	if !ok {
		return nil
	}
	t := tr.Trust()
	if s.trustSent != nil && proto.Equal(t, s.trustSent) {
		return nil
	}
	id, err := s.send(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_EndpointTrust{EndpointTrust: t}})
	if err != nil {
		return err
	}
	s.l.log.Info("reported the endpoint policy to the relay", "commands_off", t.GetNoCommands(), "desktop_off", t.GetNoDesktop(), "groups", t.GetGroups())
	s.trustSent, s.trustMsg = t, id
	return nil
}
