package traysvc

import (
	"context"
	"slices"
	"sync"

	"github.com/deskside/deskside/agent/link"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// EndedByUser is the reason a session ended from a tray gives the
// technician and the audit log.
const EndedByUser = "ended by the user from the tray"

// Sessions returns r with the trays told about each remote session while
// it runs (who, view or control) and able to end it: End session on a
// tray ends every session on the screen with EndedByUser.
func (s *Service) Sessions(r link.DesktopRunner) link.DesktopRunner {
	return &sessionRunner{DesktopRunner: r, trays: s}
}

type sessionRunner struct {
	link.DesktopRunner
	trays *Service

	mu   sync.Mutex
	live []*desksidev1.StartDesktop // oldest first
}

// Run implements link.DesktopRunner.
func (w *sessionRunner) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	w.mu.Lock()
	w.live = append(w.live, req)
	w.publishLocked()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.live = slices.DeleteFunc(w.live, func(x *desksidev1.StartDesktop) bool { return x == req })
		w.publishLocked()
		w.mu.Unlock()
	}()
	return w.DesktopRunner.Run(ctx, req, signal)
}

// publishLocked tells the trays about the newest live session, or none.
func (w *sessionRunner) publishLocked() {
	if len(w.live) == 0 {
		w.trays.SetSession(false, "", false, nil)
		return
	}
	last := w.live[len(w.live)-1]
	w.trays.SetSession(true, last.GetTechnicianName(), last.GetControl(), func(context.Context) error {
		w.mu.Lock()
		ids := make([]string, 0, len(w.live))
		for _, x := range w.live {
			ids = append(ids, x.GetSessionId())
		}
		w.mu.Unlock()
		for _, id := range ids {
			w.End(id, EndedByUser)
		}
		return nil
	})
}
