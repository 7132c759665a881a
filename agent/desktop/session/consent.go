package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ConsentRequest is what the logged-in user is asked (or told) before a
// session's media leaves the device.
type ConsentRequest struct {
	// Technician and Tier name who asks ("alice", 2).
	Technician string
	Tier       uint32
	// Ticket is the ticket's code ("DS-1234"), or empty.
	Ticket string
	// Control is true when the technician asks to control, not only view.
	Control bool
	// Timeout is how long the user has to answer; no answer denies.
	Timeout time.Duration
}

// Text is the question, as the prompt shows it.
func (r ConsentRequest) Text() string { return r.sentence("wants to view", "wants to control") }

// Notice is what unattended-with-notice sessions tell the user.
func (r ConsentRequest) Notice() string { return r.sentence("is now viewing", "is now controlling") }

// sentence is "NAME (tier N) VERB your screen[ for ticket CODE].", with
// the view or control verb.
func (r ConsentRequest) sentence(view, control string) string {
	verb := view
	if r.Control {
		verb = control
	}
	name := r.Technician
	if name == "" {
		name = "A technician"
	}
	t := fmt.Sprintf("%s (tier %d) %s your screen", name, r.Tier, verb)
	if r.Ticket != "" {
		t += " for ticket " + r.Ticket
	}
	return t + "."
}

// Consent asks the desktop's user and tells them (Config.Consent).
type Consent interface {
	// Ask shows the prompt and waits for the answer: ANSWER_ALLOWED,
	// ANSWER_DENIED, or ANSWER_NO_ANSWER after r.Timeout. An error means
	// the user could not be asked (no dialog program, no display).
	Ask(ctx context.Context, r ConsentRequest) (desksidev1.DesktopConsent_Answer, error)
	// Notify tells the user that a session started, without waiting.
	Notify(ctx context.Context, r ConsentRequest) error
}

// DefaultConsentTimeout is how long the user has to answer by default.
const DefaultConsentTimeout = 30 * time.Second

// Reasons a session ends with when the user does not allow it; the
// console shows them as they are.
const (
	ReasonDenied   = "denied by the user"
	ReasonNoAnswer = "no answer: the user did not answer the consent prompt in time"
)

// errNoConsent refuses an attended session on an agent that cannot ask.
var errNoConsent = errors.New("the device's policy requires the user's consent, but this agent cannot ask (no consent prompt configured)")

// consent runs the device's policy before any media: it asks (attended),
// tells (unattended with notice) or does nothing (unattended), and
// reports the answer to the relay through signal. It returns "" when the
// session may go on, else why it ends.
func (s *Session) consent(ctx context.Context, req *desksidev1.StartDesktop) string {
	mode := req.GetPolicyMode()
	if mode == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED {
		return ""
	}
	c := s.m.cfg.Consent
	if c == nil {
		return errNoConsent.Error()
	}
	r := ConsentRequest{Technician: req.GetTechnicianName(), Tier: req.GetTechnicianTier(), Ticket: req.GetTicketCode(),
		Control: req.GetControl(), Timeout: s.m.cfg.ConsentTimeout}
	report := func(a desksidev1.DesktopConsent_Answer) error {
		return s.signal(&desksidev1.DesktopSignal{SessionId: s.id, Signal: &desksidev1.DesktopSignal_Consent{
			Consent: &desksidev1.DesktopConsent{Answer: a, Control: req.GetControl()}}})
	}
	// The session's end (the viewer left, the relay ended it) closes the
	// prompt.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-pctx.Done():
		}
	}()
	if mode == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNATTENDED_NOTICE {
		if err := c.Notify(pctx, r); err != nil {
			return "the device's policy requires telling the user, but " + err.Error()
		}
		s.log.Info("desktop session: the user was told", logKeySession, s.id)
		if err := report(desksidev1.DesktopConsent_ANSWER_NOTIFIED); err != nil {
			return "signaling failed: " + err.Error()
		}
		return ""
	}
	a, err := c.Ask(pctx, r)
	if err != nil {
		if pctx.Err() != nil {
			select {
			case why := <-s.ended:
				return why
			default:
				return "ended while waiting for the user's answer"
			}
		}
		return "the device's policy requires the user's consent, but " + err.Error()
	}
	s.log.Info("desktop session: the user answered", logKeySession, s.id, "answer", a.String())
	if err := report(a); err != nil {
		return "signaling failed: " + err.Error()
	}
	switch a {
	case desksidev1.DesktopConsent_ANSWER_ALLOWED:
		return ""
	case desksidev1.DesktopConsent_ANSWER_NO_ANSWER:
		return ReasonNoAnswer
	}
	return ReasonDenied
}
