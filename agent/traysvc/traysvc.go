// Package traysvc serves the users' trays (agent/tray) over the agent
// service's local IPC (internal/localipc): their Get help calls go to the
// relay over the agent's link, and each tray gets the pushes about its
// own user's requests, the state of the remote session on the screen, and
// the consent questions of sessions on its user's screen where no dialog
// program can ask (AskConsent), which only that user's trays can answer.
//
// Who a tray speaks for is never a field of a message: it is the
// connection's peer uid (SO_PEERCRED), looked up to a login. A user sees
// only their own requests and pushes; root is the user "root", not
// whoever it names.
package traysvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/internal/localipc"
	"github.com/deskside/deskside/internal/mailbox"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// MaxFrame caps a tray connection's frames: a request carries a
// screenshot of at most 2 MiB.
const MaxFrame = 3 << 20

// Caps on one connection.
const (
	// maxInFlight is how many calls one tray may have running at once.
	maxInFlight = 4
	// pushQueue is how many pushes wait for a slow tray before the oldest
	// are dropped (My requests reloads from the relay anyway).
	pushQueue = 64
	// callTimeout bounds one call to the relay.
	callTimeout = 30 * time.Second
)

// Service answers the trays' calls (SetLink first: until then they are
// told the agent is starting).
type Service struct {
	// Triage, when set, runs the agent's checks for the report filed with
	// a request (within TriageBudget, default 2 s).
	Triage       link.Checker
	TriageBudget time.Duration
	Logger       *slog.Logger
	// Lookup finds the user of a uid (default os/user.LookupId).
	Lookup func(uid uint32) (*desksidev1.HelpUser, error)

	mu      sync.Mutex
	link    *link.Link
	subs    map[*sub]struct{}
	conns   map[*localipc.Conn]struct{}
	closed  bool
	session *desksidev1.TrayState
	owner   uint32 // whose screen the session shows: only their trays see it
	end     func(context.Context) error

	questions    map[uint64]*question // open consent questions by id
	nextQuestion uint64
}

// sub is one tray's subscription to its user's pushes.
type sub struct {
	uid     uint32
	login   string
	updates chan *desksidev1.HelpUpdate
	kick    chan struct{}
	// consent carries the user's consent questions and their closing.
	consent chan *desksidev1.LocalMessage
}

// SetLink sets the agent's link the calls go over.
func (s *Service) SetLink(l *link.Link) {
	s.mu.Lock()
	s.link = l
	s.mu.Unlock()
}

func (s *Service) getLink() *link.Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// Close closes every tray connection (the agent is stopping; the trays
// say the agent cannot be reached and reconnect to the next one).
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// LookupUser is the user of uid from the system's user database.
func LookupUser(uid uint32) (*desksidev1.HelpUser, error) {
	return lookupName(strconv.FormatUint(uint64(uid), 10), fmt.Sprintf("uid %d", uid))
}

// lookupName is the user of id (a uid, or a SID on Windows), which
// errors name as what.
func lookupName(id, what string) (*desksidev1.HelpUser, error) {
	u, err := user.LookupId(id)
	if err != nil {
		return nil, fmt.Errorf("%s has no entry in the user database (%v); the tray must run as a user of this computer", what, err)
	}
	name, _, _ := strings.Cut(u.Name, ",") // the GECOS field's first part
	return &desksidev1.HelpUser{Login: u.Username, Name: cmp.Or(name, u.Username)}, nil
}

// Push passes a relay push to the trays of its user only (wire it into
// link.Config.OnHelpUpdate). It never blocks the link.
func (s *Service) Push(u *desksidev1.HelpUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.subs {
		if t.login != u.GetLogin() {
			continue
		}
		mailbox.Put(t.updates, u)
	}
}

// SetSession records the remote session on owner's screen and the
// function that ends it (nil end: none runs); the trays are told. Only
// the trays of owner (a uid; NoOwner: nobody's) see the session and can
// end it.
func (s *Service) SetSession(owner uint32, active bool, technician string, control bool, end func(context.Context) error) {
	s.mu.Lock()
	s.session = &desksidev1.TrayState{SessionActive: active, Technician: technician, Control: control}
	s.owner = owner
	s.end = end
	for t := range s.subs {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// state is what the tray of uid shows.
func (s *Service) state(uid uint32) *desksidev1.TrayState {
	s.mu.Lock()
	st := &desksidev1.TrayState{}
	if s.session != nil && s.owner == uid && uid != NoOwner {
		st = &desksidev1.TrayState{SessionActive: s.session.GetSessionActive(), Technician: s.session.GetTechnician(), Control: s.session.GetControl()}
	}
	l := s.link
	s.mu.Unlock()
	st.Connected = l != nil && l.Connected()
	return st
}

func (s *Service) log() *slog.Logger { return cmp.Or(s.Logger, slog.Default()) }

// Serve serves one tray connection whose first frame is first, until the
// tray closes it; it owns c.
func (s *Service) Serve(c *localipc.Conn, first *desksidev1.LocalMessage) {
	defer c.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.conns == nil {
		s.conns = map[*localipc.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.SetMaxFrame(MaxFrame)
	peer := c.Peer()
	var who *desksidev1.HelpUser
	var err error
	switch {
	case s.Lookup != nil:
		who, err = s.Lookup(peer.UID)
	case peer.SID != "":
		// Windows: the uid is a hash of the SID; the SID names the user.
		who, err = lookupName(peer.SID, "SID "+peer.SID)
	default:
		who, err = LookupUser(peer.UID)
	}
	if err != nil {
		_ = c.Send(errorAnswer(first.GetId(), err))
		return
	}
	log := s.log().With("component", "tray IPC", "user", who.GetLogin(), "peer", peer.String())
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	slots := make(chan struct{}, maxInFlight)
	subscribed := false
	m := first
	for {
		if _, ok := m.GetBody().(*desksidev1.LocalMessage_TraySubscribe); ok {
			if !subscribed {
				subscribed = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.pushes(c, peer.UID, who.GetLogin(), done)
				}()
			}
		} else {
			select {
			case slots <- struct{}{}:
				wg.Add(1)
				go func(m *desksidev1.LocalMessage) {
					defer wg.Done()
					defer func() { <-slots }()
					_ = c.Send(s.answer(peer.UID, who, m))
				}(m)
			default:
				_ = c.Send(errorAnswer(m.GetId(), fmt.Errorf("the tray has %d calls running already; wait for their answers", maxInFlight)))
			}
		}
		next := &desksidev1.LocalMessage{}
		if err := c.Recv(next); err != nil {
			if errors.Is(err, localipc.ErrFrameTooLarge) {
				log.Warn("tray sent a frame over the cap; connection closed", "err", err)
			}
			return
		}
		m = next
	}
}

// pushes sends the user's pushes and the state's changes to the tray
// until done.
func (s *Service) pushes(c *localipc.Conn, uid uint32, login string, done <-chan struct{}) {
	t := &sub{uid: uid, login: login, updates: make(chan *desksidev1.HelpUpdate, pushQueue), kick: make(chan struct{}, 1),
		consent: make(chan *desksidev1.LocalMessage, pushQueue)}
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[*sub]struct{}{}
	}
	s.subs[t] = struct{}{}
	open := s.openLocked(uid) // questions asked before this tray came
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, t)
		s.mu.Unlock()
	}()
	// The link has no event for its connection: look every second.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *desksidev1.TrayState
	sendState := func() error {
		st := s.state(uid)
		if last != nil && last.GetConnected() == st.GetConnected() && last.GetSessionActive() == st.GetSessionActive() &&
			last.GetTechnician() == st.GetTechnician() && last.GetControl() == st.GetControl() {
			return nil
		}
		last = st
		return c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayState{TrayState: st}})
	}
	if sendState() != nil {
		return
	}
	for _, m := range open {
		if c.Send(m) != nil {
			return
		}
	}
	for {
		var err error
		select {
		case <-done:
			return
		case <-tick.C:
			err = sendState()
		case <-t.kick:
			err = sendState()
		case u := <-t.updates:
			err = c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayHelpUpdate{TrayHelpUpdate: u}})
		case m := <-t.consent:
			err = c.Send(m)
		}
		if err != nil {
			c.Close() // the tray is gone: Serve's Recv returns
			return
		}
	}
}

func errorAnswer(ref uint64, err error) *desksidev1.LocalMessage {
	return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: err.Error()}}}
}

// answer runs one call as who, the user of uid (whatever login or user
// the message names).
func (s *Service) answer(uid uint32, who *desksidev1.HelpUser, m *desksidev1.LocalMessage) *desksidev1.LocalMessage {
	ref := m.GetId()
	if b, ok := m.GetBody().(*desksidev1.LocalMessage_ConsentAnswer); ok {
		// Answered on this computer: the relay is not needed.
		if err := s.answerConsent(uid, b.ConsentAnswer); err != nil {
			return errorAnswer(ref, err)
		}
		return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayDone{TrayDone: &desksidev1.TrayDone{}}}
	}
	l := s.getLink()
	if l == nil {
		return errorAnswer(ref, errors.New("the agent is still starting; try again in a moment"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var err error
	switch b := m.GetBody().(type) {
	case *desksidev1.LocalMessage_TraySearch:
		var r *desksidev1.HelpArticles
		r, err = l.SearchHelpArticles(ctx, &desksidev1.SearchHelpArticles{Query: b.TraySearch.GetQuery(), Limit: b.TraySearch.GetLimit()})
		if err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayArticles{TrayArticles: r}}
		}
	case *desksidev1.LocalMessage_TrayHelped:
		err = l.ArticleHelped(ctx, &desksidev1.ArticleHelped{ArticleId: b.TrayHelped.GetArticleId(), User: who})
		if err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayDone{TrayDone: &desksidev1.TrayDone{}}}
		}
	case *desksidev1.LocalMessage_TrayFileHelp:
		in := b.TrayFileHelp
		r := &desksidev1.FileHelpRequest{
			User:     &desksidev1.HelpUser{Login: who.GetLogin(), Name: who.GetName(), Email: in.GetUser().GetEmail()},
			Category: in.GetCategory(), Description: in.GetDescription(), Subject: in.GetSubject(),
			ScreenshotPng: in.GetScreenshotPng(), Triage: in.GetTriage(),
		}
		if r.Triage == nil && s.Triage != nil {
			budget := cmp.Or(s.TriageBudget, 2*time.Second)
			tctx, tcancel := context.WithTimeout(ctx, budget+time.Second)
			r.Triage = s.Triage.Run(tctx, &desksidev1.RunChecks{Budget: durationpb.New(budget)})
			tcancel()
		}
		var f *desksidev1.HelpRequestFiled
		f, err = l.FileHelpRequest(ctx, r)
		if err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayFiled{TrayFiled: f}}
		}
	case *desksidev1.LocalMessage_TrayListRequests:
		var r *desksidev1.MyRequests
		r, err = l.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: who.GetLogin()})
		if err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayMyRequests{TrayMyRequests: r}}
		}
	case *desksidev1.LocalMessage_TrayReply:
		in := b.TrayReply
		var r *desksidev1.MyRequest
		r, err = l.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: who.GetLogin(), Code: in.GetCode(), Text: in.GetText(), Chat: in.GetChat()})
		if err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayRequest{TrayRequest: r}}
		}
	case *desksidev1.LocalMessage_TrayEndSession:
		s.mu.Lock()
		end, active := s.end, s.session.GetSessionActive() && s.owner == uid && uid != NoOwner
		s.mu.Unlock()
		if !active || end == nil {
			return errorAnswer(ref, errors.New("no remote session is running on this screen"))
		}
		if err = end(ctx); err == nil {
			return &desksidev1.LocalMessage{RefId: ref, Body: &desksidev1.LocalMessage_TrayDone{TrayDone: &desksidev1.TrayDone{}}}
		}
	default:
		err = fmt.Errorf("the agent does not serve %T over local IPC; update the tray and the agent so they match", m.GetBody())
	}
	return errorAnswer(ref, err)
}
