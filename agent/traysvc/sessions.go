package traysvc

import (
	"context"
	"slices"
	"sync"

	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/agent/usersession"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// EndedByUser is the reason a session ended from a tray gives the
// technician and the audit log.
const EndedByUser = "ended by the user from the tray"

// NoOwner is the owner of a session whose user is not known yet: no tray
// sees it.
const NoOwner = ^uint32(0)

// Sessions returns r with the screen owner's trays told about each remote
// session while it runs (who, view or control) and able to end it: End
// session on a tray ends every session on the screen with EndedByUser.
//
// owner is the uid whose screen r shows: the agent's own uid when it runs
// in the user's session (make run). A runner that finds the console user
// per session (usersession.Runner) reports them through
// usersession.ReportOwner: pass NoOwner, and no tray sees a session until
// its user is known. Trays of other users never see it nor end it.
func (s *Service) Sessions(r link.DesktopRunner, owner uint32) link.DesktopRunner {
	return &sessionRunner{DesktopRunner: r, trays: s, owner: owner}
}

type sessionRunner struct {
	link.DesktopRunner
	trays *Service
	owner uint32

	mu   sync.Mutex
	live []*liveSession // oldest first
}

type liveSession struct {
	req   *desksidev1.StartDesktop
	owner uint32
}

// Run implements link.DesktopRunner.
func (w *sessionRunner) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	ent := &liveSession{req: req, owner: w.owner}
	w.mu.Lock()
	w.live = append(w.live, ent)
	w.publishLocked()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.live = slices.DeleteFunc(w.live, func(x *liveSession) bool { return x == ent })
		w.publishLocked()
		w.mu.Unlock()
	}()
	ctx = usersession.WithOwner(ctx, func(uid uint32) {
		w.mu.Lock()
		ent.owner = uid
		w.publishLocked()
		w.mu.Unlock()
	})
	return w.DesktopRunner.Run(ctx, req, signal)
}

// publishLocked tells the owner's trays about the newest live session
// whose user is known, or none.
func (w *sessionRunner) publishLocked() {
	var last *liveSession
	for _, x := range slices.Backward(w.live) {
		if x.owner != NoOwner {
			last = x
			break
		}
	}
	if last == nil {
		w.trays.SetSession(NoOwner, false, "", false, nil)
		return
	}
	w.trays.SetSession(last.owner, true, last.req.GetTechnicianName(), last.req.GetControl(), func(context.Context) error {
		w.mu.Lock()
		ids := make([]string, 0, len(w.live))
		for _, x := range w.live {
			ids = append(ids, x.req.GetSessionId())
		}
		w.mu.Unlock()
		for _, id := range ids {
			w.End(id, EndedByUser)
		}
		return nil
	})
}
