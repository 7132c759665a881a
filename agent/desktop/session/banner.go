package session

import (
	"io"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ReasonEndedByUser is why a session ends when the user ends it on the
// desktop (the banner's End session button).
const ReasonEndedByUser = "ended by the user"

// Banner is what the on-screen indicator of a session shows and does
// (Config.OpenBanner).
type Banner struct {
	// Technician names who is connected ("alice"; empty: unknown).
	Technician string
	// Control is true when the technician controls the screen.
	Control bool
	// End ends the session with ReasonEndedByUser; safe to call from any
	// goroutine, more than once, and after the session ended.
	End func()
}

// Text is the indicator's line: "alice is viewing your screen".
func (b Banner) Text() string {
	name := b.Technician
	if name == "" {
		name = "A technician"
	}
	what := "viewing"
	if b.Control {
		what = "controlling"
	}
	return name + " is " + what + " your screen"
}

// openBanner shows the session's indicator; nil when this agent cannot
// (logged once: the session goes on without it).
func (s *Session) openBanner(req *desksidev1.StartDesktop) io.Closer {
	if s.m.cfg.OpenBanner == nil {
		return nil
	}
	b, err := s.m.cfg.OpenBanner(Banner{Technician: req.GetTechnicianName(), Control: req.GetControl(),
		End: func() { s.end(ReasonEndedByUser) }})
	if err != nil {
		s.m.bannerLogged.Do(func() {
			s.log.Warn("desktop sessions go without the on-screen banner", logKeySession, s.id, logKeyError, err)
		})
		return nil
	}
	return b
}
