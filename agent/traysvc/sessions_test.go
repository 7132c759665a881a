package traysvc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/usersession"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// blockingRunner stands in for the desktop (this tests the bookkeeping
// around it): a session runs until End names it; it reports the screen's
// owner as usersession.Runner does.
type blockingRunner struct {
	owner uint32
	mu    sync.Mutex
	stops map[string]chan string
}

func (b *blockingRunner) Run(ctx context.Context, req *desksidev1.StartDesktop, _ func(*desksidev1.DesktopSignal) error) string {
	usersession.ReportOwner(ctx, b.owner)
	ch := make(chan string, 1)
	b.mu.Lock()
	b.stops[req.GetSessionId()] = ch
	b.mu.Unlock()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return "viewer left"
	}
}

func (b *blockingRunner) Signal(*desksidev1.DesktopSignal) error { return nil }

func (b *blockingRunner) End(id, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch := b.stops[id]; ch != nil {
		ch <- reason
	}
}

// TestSessionsShowAndEnd: the screen owner's trays see the newest running
// session, other users' trays see none, the state clears when the last
// ends, and End session ends every session on the screen with EndedByUser.
func TestSessionsShowAndEnd(t *testing.T) {
	const owner, other = 1000, 1001
	svc := &Service{}
	inner := &blockingRunner{owner: owner, stops: map[string]chan string{}}
	r := svc.Sessions(inner, NoOwner)
	reasons := make(chan string, 2)
	start := func(id, who string, control bool) {
		go func() {
			reasons <- r.Run(t.Context(), &desksidev1.StartDesktop{SessionId: id, TechnicianName: who, Control: control}, nil)
		}()
	}
	waitState := func(active bool, who string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := svc.state(owner)
			if st.GetSessionActive() == active && st.GetTechnician() == who {
				if o := svc.state(other); o.GetSessionActive() || o.GetTechnician() != "" {
					t.Fatalf("another user's tray sees %v", o)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("state %v; want active=%v technician %q", st, active, who)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	start("s1", "Dana", false)
	waitState(true, "Dana")
	start("s2", "Lee", true)
	waitState(true, "Lee")
	if st := svc.state(owner); !st.GetControl() {
		t.Errorf("the newest session controls the screen; state %v", st)
	}

	svc.mu.Lock()
	end := svc.end
	svc.mu.Unlock()
	if end == nil {
		t.Fatal("no End session while sessions run")
	}
	if err := end(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case got := <-reasons:
			if got != EndedByUser {
				t.Errorf("a session ended with %q, want %q", got, EndedByUser)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("End session did not end both sessions")
		}
	}
	waitState(false, "")
}
