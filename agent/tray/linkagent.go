package tray

import (
	"cmp"
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/agent/link"
	"github.com/deskside/deskside/internal/mailbox"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// LinkAgent implements Agent over an agent link in the same process (the
// agent run by `make run`, and the tests): the calls go over the link's
// stream to the relay as User.
type LinkAgent struct {
	Link *link.Link
	User *desksidev1.HelpUser
	// Triage, when set, runs the agent's checks for the report that goes
	// with a request. They start while the user types (the first search),
	// with TriageBudget (default 5 s); Send waits for them at most
	// triageWait, so the ticket still reaches the queue within 2 s.
	Triage       link.Checker
	TriageBudget time.Duration

	updates chan *desksidev1.HelpUpdate
	changes chan struct{}

	mu      sync.Mutex
	session SessionState
	end     func(context.Context) error
	triage  *triageRun
}

// triageRun is one run of the checks; report is set when done closes.
type triageRun struct {
	at     time.Time
	done   chan struct{}
	report *desksidev1.CheckReport
}

// triageWait is how long filing waits for checks still running; a report
// is kept for triageFresh.
const (
	triageWait  = time.Second
	triageFresh = 2 * time.Minute
)

// startTriage returns the current run of the checks, starting one when
// there is none from the last triageFresh.
func (a *LinkAgent) startTriage() *triageRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.triage != nil && time.Since(a.triage.at) < triageFresh {
		return a.triage
	}
	run := &triageRun{at: time.Now(), done: make(chan struct{})}
	a.triage = run
	budget := cmp.Or(a.TriageBudget, 5*time.Second)
	go func() {
		defer close(run.done)
		ctx, cancel := context.WithTimeout(context.Background(), budget+time.Second)
		defer cancel()
		run.report = a.Triage.Run(ctx, &desksidev1.RunChecks{Budget: durationpb.New(budget)})
	}()
	return run
}

// NewLinkAgent returns the Agent for user over l. Wire Push into the
// link's Config.OnHelpUpdate so the user's pushes reach the tray.
func NewLinkAgent(l *link.Link, user *desksidev1.HelpUser) *LinkAgent {
	return &LinkAgent{Link: l, User: user, updates: make(chan *desksidev1.HelpUpdate, 64), changes: make(chan struct{}, 1)}
}

// Push passes a relay push for this agent's user to Updates (others'
// pushes are dropped: they are not this user's to see). It never blocks
// the link: when the tray falls 64 pushes behind, the oldest are lost and
// My requests reloads from the relay anyway.
func (a *LinkAgent) Push(u *desksidev1.HelpUpdate) {
	if u.GetLogin() != a.User.GetLogin() {
		return
	}
	mailbox.Put(a.updates, u)
}

// SetSession records the remote session on this screen (from the agent's
// desktop runner) and the function that ends it.
func (a *LinkAgent) SetSession(s SessionState, end func(context.Context) error) {
	a.mu.Lock()
	a.session, a.end = s, end
	a.mu.Unlock()
	a.changed()
}

func (a *LinkAgent) changed() {
	select {
	case a.changes <- struct{}{}:
	default:
	}
}

func (a *LinkAgent) Connected() bool { return a.Link != nil && a.Link.Connected() }

func (a *LinkAgent) Search(ctx context.Context, query string) ([]*desksidev1.HelpArticle, error) {
	if a.Triage != nil {
		a.startTriage() // the user is describing a problem: check the device meanwhile
	}
	r, err := a.Link.SearchHelpArticles(ctx, &desksidev1.SearchHelpArticles{Query: query, Limit: 5})
	return r.GetArticles(), err
}

func (a *LinkAgent) Helped(ctx context.Context, id int64) error {
	return a.Link.ArticleHelped(ctx, &desksidev1.ArticleHelped{ArticleId: id, User: a.User})
}

func (a *LinkAgent) FileHelp(ctx context.Context, req *desksidev1.FileHelpRequest) (*desksidev1.HelpRequestFiled, error) {
	u := &desksidev1.HelpUser{Login: a.User.GetLogin(), Name: a.User.GetName(), Email: req.GetUser().GetEmail()}
	r := &desksidev1.FileHelpRequest{User: u, Category: req.GetCategory(), Description: req.GetDescription(),
		Subject: req.GetSubject(), ScreenshotPng: req.GetScreenshotPng(), Triage: req.GetTriage()}
	if r.Triage == nil && a.Triage != nil {
		run := a.startTriage()
		select {
		case <-run.done:
			r.Triage = run.report
		case <-time.After(triageWait):
			// Filed without: the technician can run the checks from the ticket.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return a.Link.FileHelpRequest(ctx, r)
}

func (a *LinkAgent) MyRequests(ctx context.Context) ([]*desksidev1.MyRequest, error) {
	r, err := a.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: a.User.GetLogin()})
	return r.GetRequests(), err
}

func (a *LinkAgent) Reply(ctx context.Context, code, text string, chat bool) (*desksidev1.MyRequest, error) {
	return a.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: a.User.GetLogin(), Code: code, Text: text, Chat: chat})
}

func (a *LinkAgent) Updates() <-chan *desksidev1.HelpUpdate { return a.updates }

func (a *LinkAgent) SessionState() SessionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.session
}

func (a *LinkAgent) SessionChanges() <-chan struct{} { return a.changes }

func (a *LinkAgent) EndSession(ctx context.Context) error {
	a.mu.Lock()
	end, active := a.end, a.session.Active
	a.mu.Unlock()
	if !active || end == nil {
		return ErrNoSession
	}
	return end(ctx)
}

// Consent implements Agent: the tray in the agent's process is not asked
// (the agent asks through agent/traysvc, which serves the trays' IPC).
func (a *LinkAgent) Consent() ConsentState { return ConsentState{} }

// AnswerConsent implements Agent.
func (a *LinkAgent) AnswerConsent(context.Context, uint64, bool) error { return ErrNoConsent }
