package tray

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ErrNoTrayHost means the desktop shows no tray icons: deskside-tray
// keeps serving the Get help page (open it with `deskside-tray --open`).
var ErrNoTrayHost = errors.New("no system tray on this desktop")

// Tray is the tray's behaviour, apart from how the icon is drawn: the
// menu state and what each item does.
type Tray struct {
	Agent  Agent
	Server *Server
	// Open opens a URL in the user's browser.
	Open   func(url string) error
	Logger *slog.Logger
	// Quit is called for the Quit item.
	Quit func()

	mu     sync.Mutex
	unread int
	change chan struct{}
}

// NewTray returns the tray over a running page server.
func NewTray(a Agent, s *Server, open func(string) error, logger *slog.Logger) *Tray {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tray{Agent: a, Server: s, Open: open, Logger: logger, change: make(chan struct{}, 1)}
}

// Updated counts a push: a technician's reply or a pick-up is unread
// until the user opens My requests.
func (t *Tray) Updated(u *desksidev1.HelpUpdate) {
	if _, _, ok := notification(u); !ok {
		return
	}
	t.mu.Lock()
	t.unread++
	t.mu.Unlock()
	t.changed()
}

func (t *Tray) changed() {
	select {
	case t.change <- struct{}{}:
	default:
	}
}

// Refresh signals Changes: the agent's state changed.
func (t *Tray) Refresh() { t.changed() }

// Changes signals when State may differ (unread replies; the agent's own
// changes come from Agent.SessionChanges).
func (t *Tray) Changes() <-chan struct{} { return t.change }

// State is the menu state now.
func (t *Tray) State() MenuState {
	t.mu.Lock()
	unread := t.unread
	t.mu.Unlock()
	_, unavailable := t.Agent.(Unavailable)
	return MenuState{Connected: t.Agent.Connected(), Reachable: !unavailable, Session: t.Agent.SessionState(), Unread: unread,
		Consent: t.Agent.Consent().Open}
}

// ConsentAsked opens the page's consent view in the browser: a question
// arrived (the page server's OnConsent).
func (t *Tray) ConsentAsked() {
	t.changed()
	if err := t.Open(t.Server.URL("consent")); err != nil {
		t.Logger.Warn("open the consent page", "err", err)
	}
}

// Click does what item id does.
func (t *Tray) Click(ctx context.Context, id ItemID) error {
	switch id {
	case ItemGetHelp:
		return t.Open(t.Server.URL(""))
	case ItemMyRequests:
		t.mu.Lock()
		t.unread = 0
		t.mu.Unlock()
		t.changed()
		return t.Open(t.Server.URL("requests"))
	case ItemEndSession:
		return t.Agent.EndSession(ctx)
	case ItemAllow:
		return t.Open(t.Server.URL("consent"))
	case ItemDeny:
		q := t.Agent.Consent().Open
		if q.ID == 0 {
			return ErrNoConsent
		}
		err := t.Agent.AnswerConsent(ctx, q.ID, false)
		t.changed()
		return err
	case ItemQuit:
		if t.Quit != nil {
			t.Quit()
		}
		return nil
	}
	return nil
}
