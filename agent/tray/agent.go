package tray

import (
	"context"
	"errors"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Agent is what the tray needs of the local agent. Every call is on
// behalf of the user the tray runs as: the implementation, not the page,
// says who that is (over local IPC the service takes it from the peer
// credentials of the connection).
type Agent interface {
	// Connected reports whether the agent reaches the relay right now.
	Connected() bool
	// Search returns published knowledge-base articles matching query.
	Search(ctx context.Context, query string) ([]*desksidev1.HelpArticle, error)
	// Helped records that an article solved the user's problem.
	Helped(ctx context.Context, articleID int64) error
	// FileHelp files a request (the user's login and name are filled in
	// by the implementation) and returns it with its ticket code.
	FileHelp(ctx context.Context, req *desksidev1.FileHelpRequest) (*desksidev1.HelpRequestFiled, error)
	// MyRequests lists the user's requests on this device, newest first.
	MyRequests(ctx context.Context) ([]*desksidev1.MyRequest, error)
	// Reply adds the user's reply to one of their requests, or, with
	// chat, a live chat line (a CHAT entry on the ticket's timeline).
	Reply(ctx context.Context, code, text string, chat bool) (*desksidev1.MyRequest, error)
	// Updates delivers the relay's pushes about the user's requests. It
	// is closed when the agent stops.
	Updates() <-chan *desksidev1.HelpUpdate
	// SessionState is the remote session on this screen now (zero: none).
	SessionState() SessionState
	// SessionChanges signals (without a value) when SessionState or
	// Connected may have changed.
	SessionChanges() <-chan struct{}
	// EndSession ends the remote session on this screen at once.
	EndSession(ctx context.Context) error
	// Consent is the consent question waiting for the user's answer, if
	// any, and the last one that closed (SessionChanges signals changes).
	Consent() ConsentState
	// AnswerConsent answers question id: allow or deny.
	AnswerConsent(ctx context.Context, id uint64, allow bool) error
}

// ConsentQuestion is a technician's request to see the user's screen,
// asked on the tray where no dialog program can ask (docs/adr 28).
type ConsentQuestion struct {
	// ID is zero when no question is open.
	ID uint64
	// Text is the question ("alice (tier 1) wants to view your screen for
	// ticket DS-7K3Q.").
	Text       string
	Technician string
	Tier       uint32
	Ticket     string
	Control    bool
	// Deadline is when no answer denies.
	Deadline time.Time
}

// ConsentState is the tray's consent question now.
type ConsentState struct {
	// Open is the oldest open question (ID 0: none).
	Open ConsentQuestion
	// ClosedID and ClosedReason are the last question that closed and why
	// ("You allowed the session.", "No answer in time: …").
	ClosedID     uint64
	ClosedReason string
}

// ErrNoConsent is what AnswerConsent returns when no question is open.
var ErrNoConsent = errors.New("no request to see your screen is waiting for an answer")

// SessionState is a remote desktop session on the user's screen.
type SessionState struct {
	// Active is set while a technician has a session.
	Active bool
	// Technician is the name the user sees ("Dana (tier 2)").
	Technician string
	// Control is set when the technician can use the mouse and keyboard,
	// not only see the screen.
	Control bool
}

// ErrNoSession is returned by EndSession when no session runs.
var ErrNoSession = errors.New("no remote session is running on this screen")

// ErrAgentUnreachable is what the calls return while the agent service
// cannot be reached.
var ErrAgentUnreachable = errors.New("the Deskside agent service on this computer cannot be reached (it may be stopped or restarting; the tray keeps trying); until it is back, ask your IT team for help by phone or mail")

// Unavailable is the Agent the page uses when it has none: the page still
// opens and says why nothing can be sent.
type Unavailable struct{}

func (Unavailable) Connected() bool { return false }
func (Unavailable) Search(context.Context, string) ([]*desksidev1.HelpArticle, error) {
	return nil, ErrAgentUnreachable
}
func (Unavailable) Helped(context.Context, int64) error { return ErrAgentUnreachable }
func (Unavailable) FileHelp(context.Context, *desksidev1.FileHelpRequest) (*desksidev1.HelpRequestFiled, error) {
	return nil, ErrAgentUnreachable
}
func (Unavailable) MyRequests(context.Context) ([]*desksidev1.MyRequest, error) {
	return nil, ErrAgentUnreachable
}
func (Unavailable) Reply(context.Context, string, string, bool) (*desksidev1.MyRequest, error) {
	return nil, ErrAgentUnreachable
}
func (Unavailable) Updates() <-chan *desksidev1.HelpUpdate { return nil }
func (Unavailable) SessionState() SessionState             { return SessionState{} }
func (Unavailable) SessionChanges() <-chan struct{}        { return nil }
func (Unavailable) EndSession(context.Context) error       { return ErrAgentUnreachable }
func (Unavailable) Consent() ConsentState                  { return ConsentState{} }
func (Unavailable) AnswerConsent(context.Context, uint64, bool) error {
	return ErrAgentUnreachable
}
