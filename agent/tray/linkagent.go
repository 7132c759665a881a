package tray

import (
	"context"
	"sync"

	"github.com/deskside/deskside/agent/link"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// LinkAgent implements Agent over an agent link in the same process (the
// agent run by `make run`, and the tests): the calls go over the link's
// stream to the relay as User.
type LinkAgent struct {
	Link *link.Link
	User *desksidev1.HelpUser

	updates chan *desksidev1.HelpUpdate
	changes chan struct{}

	mu      sync.Mutex
	session SessionState
	end     func(context.Context) error
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
	for {
		select {
		case a.updates <- u:
			return
		default:
			select {
			case <-a.updates:
			default:
			}
		}
	}
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
	return a.Link.FileHelpRequest(ctx, r)
}

func (a *LinkAgent) MyRequests(ctx context.Context) ([]*desksidev1.MyRequest, error) {
	r, err := a.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: a.User.GetLogin()})
	return r.GetRequests(), err
}

func (a *LinkAgent) Reply(ctx context.Context, code, text string) (*desksidev1.MyRequest, error) {
	return a.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: a.User.GetLogin(), Code: code, Text: text})
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
