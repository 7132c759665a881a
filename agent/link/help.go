package link

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Get help: requests the local tray (through the agent's local IPC) makes
// of the relay over the agent's stream, each answered by ref_id, and the
// relay's pushes when a technician answers (Config.OnHelpUpdate).

// ErrNotConnected is returned by a Get help call while the agent has no
// stream to the relay.
var ErrNotConnected = errors.New("the agent is not connected to the relay right now; try again in a moment")

// ErrStreamLost is returned by a Get help call whose stream ended before
// the relay answered; the request may or may not have been taken.
var ErrStreamLost = errors.New("the connection to the relay dropped before it answered; check My requests, then try again")

// RelayRefusal is the relay's refusal of a Get help request.
type RelayRefusal struct {
	Code    desksidev1.AckErrorCode
	Message string
	// RetryAfter is set when the device sent too many (RATE_LIMITED).
	RetryAfter time.Duration
}

func (e *RelayRefusal) Error() string { return "relay refused: " + e.Message }

// helpCalls is the Get help requests of a Link awaiting their answers on
// the current session.
type helpCalls struct {
	mu      sync.Mutex
	s       *session
	waiting map[uint64]chan *desksidev1.RelayMessage
}

// attach makes s the session Get help calls go to.
func (h *helpCalls) attach(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.s = s
	h.waiting = make(map[uint64]chan *desksidev1.RelayMessage)
}

// detach fails the calls waiting on s.
func (h *helpCalls) detach(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s != s {
		return
	}
	for _, ch := range h.waiting {
		close(ch)
	}
	h.s, h.waiting = nil, nil
}

// answer passes m to the call it answers and reports whether there was one.
func (h *helpCalls) answer(m *desksidev1.RelayMessage) bool {
	ref := m.GetRefId()
	if ref == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiting[ref]
	if !ok {
		return false
	}
	delete(h.waiting, ref)
	ch <- m
	return true
}

// forget drops call id of session s.
func (h *helpCalls) forget(s *session, id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == s {
		delete(h.waiting, id)
	}
}

// call sends body and waits for the relay's answer.
func (l *Link) call(ctx context.Context, m *desksidev1.AgentMessage) (*desksidev1.RelayMessage, error) {
	h := &l.help
	ch := make(chan *desksidev1.RelayMessage, 1)
	h.mu.Lock()
	s := h.s
	h.mu.Unlock()
	if s == nil {
		return nil, ErrNotConnected
	}
	// The call is registered under its id before it is sent, so the
	// answer cannot come first; h.mu is not held while sending (the
	// stream's loop needs it to pass answers on).
	s.sendMu.Lock()
	s.nextID++
	m.Id = s.nextID
	id := m.Id
	h.mu.Lock()
	if h.s != s {
		h.mu.Unlock()
		s.sendMu.Unlock()
		return nil, ErrStreamLost
	}
	h.waiting[id] = ch
	h.mu.Unlock()
	err := s.st.Send(m)
	s.sendMu.Unlock()
	if err != nil {
		h.forget(s, id)
		select {
		case s.failed <- &sendError{kind: messageKind(m), err: err}:
		default:
		}
		return nil, ErrStreamLost
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, ErrStreamLost
		}
		if a := r.GetAck(); a != nil && !a.GetAccepted() {
			return nil, &RelayRefusal{Code: a.GetError().GetCode(), Message: a.GetError().GetMessage(), RetryAfter: a.GetRetryAfter().AsDuration()}
		}
		return r, nil
	case <-ctx.Done():
		h.forget(s, id)
		return nil, ctx.Err()
	}
}

func unexpected(r *desksidev1.RelayMessage) error {
	return fmt.Errorf("the relay answered with %T; update the agent and the relay so they match", r.GetBody())
}

// FileHelpRequest files a ticket for the local user and returns its code.
func (l *Link) FileHelpRequest(ctx context.Context, req *desksidev1.FileHelpRequest) (*desksidev1.HelpRequestFiled, error) {
	r, err := l.call(ctx, &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_FileHelpRequest{FileHelpRequest: req}})
	if err != nil {
		return nil, err
	}
	if f := r.GetHelpRequestFiled(); f != nil {
		return f, nil
	}
	return nil, unexpected(r)
}

// SearchHelpArticles returns published articles matching the user's words.
func (l *Link) SearchHelpArticles(ctx context.Context, req *desksidev1.SearchHelpArticles) (*desksidev1.HelpArticles, error) {
	r, err := l.call(ctx, &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_SearchHelpArticles{SearchHelpArticles: req}})
	if err != nil {
		return nil, err
	}
	if a := r.GetHelpArticles(); a != nil {
		return a, nil
	}
	return nil, unexpected(r)
}

// ArticleHelped tells the relay an article solved the user's problem.
func (l *Link) ArticleHelped(ctx context.Context, req *desksidev1.ArticleHelped) error {
	r, err := l.call(ctx, &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_ArticleHelped{ArticleHelped: req}})
	if err != nil {
		return err
	}
	if r.GetAck().GetAccepted() {
		return nil
	}
	return unexpected(r)
}

// ListMyRequests returns the requests the local user filed from this device.
func (l *Link) ListMyRequests(ctx context.Context, req *desksidev1.ListMyRequests) (*desksidev1.MyRequests, error) {
	r, err := l.call(ctx, &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_ListMyRequests{ListMyRequests: req}})
	if err != nil {
		return nil, err
	}
	if m := r.GetMyRequests(); m != nil {
		return m, nil
	}
	return nil, unexpected(r)
}

// ReplyToRequest adds the user's reply or chat line to one of their
// requests and returns the request after it.
func (l *Link) ReplyToRequest(ctx context.Context, req *desksidev1.ReplyToRequest) (*desksidev1.MyRequest, error) {
	r, err := l.call(ctx, &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_ReplyToRequest{ReplyToRequest: req}})
	if err != nil {
		return nil, err
	}
	if m := r.GetMyRequests(); m != nil && len(m.GetRequests()) == 1 {
		return m.GetRequests()[0], nil
	}
	return nil, unexpected(r)
}

// helpUpdate hands a relay push to Config.OnHelpUpdate and acknowledges it.
func (s *session) helpUpdate(ref uint64, u *desksidev1.HelpUpdate) error {
	if f := s.l.cfg.OnHelpUpdate; f != nil {
		f(u)
	}
	_, err := s.send(&desksidev1.AgentMessage{RefId: ref, Body: &desksidev1.AgentMessage_HelpUpdateSeen{HelpUpdateSeen: &desksidev1.HelpUpdateSeen{}}})
	return err
}
