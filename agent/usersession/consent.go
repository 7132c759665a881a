package usersession

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/session"
	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// AskTray asks the consent question r on the trays of uid (the service's
// agent/traysvc.Service.AskConsent); consent.ErrNoTray when none is
// connected.
type AskTray func(ctx context.Context, uid uint32, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error)

// questionOf is r as the helper sends it to the service.
func questionOf(r session.ConsentRequest) *desksidev1.ConsentQuestion {
	q := &desksidev1.ConsentQuestion{Technician: r.Technician, Tier: r.Tier, TicketCode: r.Ticket, Control: r.Control}
	if r.Timeout > 0 {
		q.Timeout = durationpb.New(r.Timeout)
	}
	return q
}

// requestOf is the question a helper sent, as the service asks it (the
// text is the service's own, from these fields).
func requestOf(q *desksidev1.ConsentQuestion) session.ConsentRequest {
	return session.ConsentRequest{Technician: q.GetTechnician(), Tier: q.GetTier(), Ticket: q.GetTicketCode(),
		Control: q.GetControl(), Timeout: q.GetTimeout().AsDuration()}
}

// askTrayAnswer asks q for uid with ask (nil: no tray can be asked) and
// returns the frame answering the helper's request ref.
func askTrayAnswer(ctx context.Context, ask AskTray, uid uint32, ref uint64, q *desksidev1.ConsentQuestion) *desksidev1.LocalMessage {
	err := consent.ErrNoTray
	var a desksidev1.DesktopConsent_Answer
	if ask != nil {
		a, err = ask(ctx, uid, requestOf(q))
	}
	if err != nil {
		return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: err.Error()}}}
	}
	return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_ConsentAnswer{ConsentAnswer: &desksidev1.ConsentAnswer{Answer: a}}}
}

// trayAsker is the helper's consent.Asker: it asks the service, which
// asks the trays of the helper's user (its peer uid).
type trayAsker struct {
	c *localipc.Conn

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *desksidev1.LocalMessage
}

var _ consent.Asker = (*trayAsker)(nil)

func newTrayAsker(c *localipc.Conn) *trayAsker {
	return &trayAsker{c: c, pending: map[uint64]chan *desksidev1.LocalMessage{}}
}

// Ask implements consent.Asker.
func (t *trayAsker) Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	ch := make(chan *desksidev1.LocalMessage, 1)
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	t.pending[id] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, id)
		t.mu.Unlock()
	}()
	if err := t.c.Send(&desksidev1.LocalMessage{Id: id, Body: &desksidev1.LocalMessage_ConsentAsk{ConsentAsk: questionOf(r)}}); err != nil {
		return 0, err
	}
	select {
	case m := <-ch:
		if m == nil {
			return 0, errors.New("the agent service went away before the user answered")
		}
		if e := m.GetError(); e != nil {
			if e.GetMessage() == consent.ErrNoTray.Error() {
				return 0, consent.ErrNoTray
			}
			return 0, errors.New(e.GetMessage())
		}
		return m.GetConsentAnswer().GetAnswer(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// deliver hands an answer of the service to the Ask waiting for it; it
// reports whether m was one.
func (t *trayAsker) deliver(m *desksidev1.LocalMessage) bool {
	switch m.GetBody().(type) {
	case *desksidev1.LocalMessage_ConsentAnswer, *desksidev1.LocalMessage_Error:
	default:
		return false
	}
	t.mu.Lock()
	ch := t.pending[m.GetRefId()]
	delete(t.pending, m.GetRefId())
	t.mu.Unlock()
	if ch != nil {
		ch <- m
	}
	return true
}

// closeAll ends every waiting Ask: the service is gone.
func (t *trayAsker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, ch := range t.pending {
		close(ch)
		delete(t.pending, id)
	}
}
