package tray

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	"github.com/deskside/deskside/internal/mailbox"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// DefaultSocket is the agent service's local IPC socket
// (agent/usersession.DefaultSocket); DESKSIDE_AGENT_SOCKET overrides it.
const DefaultSocket = "/run/deskside-agent/agent.sock"

// ipcMaxFrame is the cap on the frames to and from the agent service
// (agent/traysvc.MaxFrame): a request carries a screenshot of at most 2 MiB.
const ipcMaxFrame = 3 << 20

// IPCAgent is the Agent over the agent service's local IPC
// (agent/traysvc): the service takes the user from the connection's peer
// credentials. It reconnects with backoff while the service is away;
// meanwhile every call returns ErrAgentUnreachable and Connected is false.
type IPCAgent struct {
	path string
	log  *slog.Logger

	updates chan *desksidev1.HelpUpdate
	changes chan struct{}

	mu      sync.Mutex
	conn    *localipc.Conn
	nextID  uint64
	pending map[uint64]chan *desksidev1.LocalMessage
	state   *desksidev1.TrayState
}

// DialAgent connects to the agent service on this computer
// (DialAgentAt on DESKSIDE_AGENT_SOCKET or DefaultSocket).
func DialAgent(ctx context.Context) (Agent, error) {
	return DialAgentAt(ctx, SocketPath(), nil)
}

// SocketPath is the agent service's socket: DESKSIDE_AGENT_SOCKET, else
// DefaultSocket.
func SocketPath() string { return cmp.Or(os.Getenv("DESKSIDE_AGENT_SOCKET"), DefaultSocket) }

// DialAgentAt connects to the agent service's socket at path and keeps
// connecting until ctx ends. The Agent is returned even when the first
// attempt fails (with its error): the page says the agent cannot be
// reached until it can.
func DialAgentAt(ctx context.Context, path string, log *slog.Logger) (*IPCAgent, error) {
	a := &IPCAgent{path: path, log: cmp.Or(log, slog.Default()), updates: make(chan *desksidev1.HelpUpdate, 64),
		changes: make(chan struct{}, 1), pending: map[uint64]chan *desksidev1.LocalMessage{}}
	c, err := a.dial()
	go a.run(ctx, c)
	return a, err
}

func (a *IPCAgent) dial() (*localipc.Conn, error) {
	c, err := localipc.Dial(a.path)
	if err != nil {
		return nil, errors.Join(ErrAgentUnreachable, err)
	}
	c.SetMaxFrame(ipcMaxFrame)
	if err := c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TraySubscribe{TraySubscribe: &desksidev1.TraySubscribe{}}}); err != nil {
		c.Close()
		return nil, errors.Join(ErrAgentUnreachable, err)
	}
	return c, nil
}

// run serves c, then reconnects with backoff (250 ms doubling to 10 s)
// until ctx ends.
func (a *IPCAgent) run(ctx context.Context, c *localipc.Conn) {
	stop := context.AfterFunc(ctx, func() {
		a.mu.Lock()
		if a.conn != nil {
			a.conn.Close()
		}
		a.mu.Unlock()
	})
	defer stop()
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		if c == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			var err error
			if c, err = a.dial(); err != nil {
				continue
			}
		}
		backoff = 250 * time.Millisecond
		a.serve(ctx, c)
		c = nil
	}
}

// serve reads c's frames until it breaks.
func (a *IPCAgent) serve(ctx context.Context, c *localipc.Conn) {
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
	if ctx.Err() != nil {
		c.Close()
	}
	defer func() {
		a.mu.Lock()
		a.conn, a.state = nil, nil
		for id, ch := range a.pending {
			close(ch)
			delete(a.pending, id)
		}
		a.mu.Unlock()
		c.Close()
		a.changed()
	}()
	for {
		m := &desksidev1.LocalMessage{}
		if err := c.Recv(m); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("the connection to the agent service broke; reconnecting", "err", err)
			}
			return
		}
		switch b := m.GetBody().(type) {
		case *desksidev1.LocalMessage_TrayHelpUpdate:
			mailbox.Put(a.updates, b.TrayHelpUpdate)
		case *desksidev1.LocalMessage_TrayState:
			a.mu.Lock()
			a.state = b.TrayState
			a.mu.Unlock()
			a.changed()
		default:
			a.mu.Lock()
			ch := a.pending[m.GetRefId()]
			delete(a.pending, m.GetRefId())
			a.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

func (a *IPCAgent) changed() {
	select {
	case a.changes <- struct{}{}:
	default:
	}
}

// call sends m and waits for its answer.
func (a *IPCAgent) call(ctx context.Context, m *desksidev1.LocalMessage) (*desksidev1.LocalMessage, error) {
	a.mu.Lock()
	c := a.conn
	if c == nil {
		a.mu.Unlock()
		return nil, ErrAgentUnreachable
	}
	a.nextID++
	m.Id = a.nextID
	ch := make(chan *desksidev1.LocalMessage, 1)
	a.pending[m.Id] = ch
	a.mu.Unlock()
	forget := func() {
		a.mu.Lock()
		delete(a.pending, m.Id)
		a.mu.Unlock()
	}
	if err := c.Send(m); err != nil {
		forget()
		if errors.Is(err, localipc.ErrFrameTooLarge) {
			return nil, fmt.Errorf("this is too large to send to the agent (a screenshot may be at most 2 MiB; leave it out or send a smaller one): %w", err)
		}
		return nil, errors.Join(ErrAgentUnreachable, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, ErrAgentUnreachable
		}
		if e := r.GetError(); e != nil {
			return nil, errors.New(e.GetMessage())
		}
		return r, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

func (a *IPCAgent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn != nil && a.state.GetConnected()
}

func (a *IPCAgent) Search(ctx context.Context, query string) ([]*desksidev1.HelpArticle, error) {
	r, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TraySearch{TraySearch: &desksidev1.SearchHelpArticles{Query: query, Limit: 5}}})
	return r.GetTrayArticles().GetArticles(), err
}

func (a *IPCAgent) Helped(ctx context.Context, id int64) error {
	_, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayHelped{TrayHelped: &desksidev1.ArticleHelped{ArticleId: id}}})
	return err
}

func (a *IPCAgent) FileHelp(ctx context.Context, req *desksidev1.FileHelpRequest) (*desksidev1.HelpRequestFiled, error) {
	r, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayFileHelp{TrayFileHelp: req}})
	if err != nil {
		return nil, err
	}
	return r.GetTrayFiled(), nil
}

func (a *IPCAgent) MyRequests(ctx context.Context) ([]*desksidev1.MyRequest, error) {
	r, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayListRequests{TrayListRequests: &desksidev1.ListMyRequests{}}})
	return r.GetTrayMyRequests().GetRequests(), err
}

func (a *IPCAgent) Reply(ctx context.Context, code, text string, chat bool) (*desksidev1.MyRequest, error) {
	r, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayReply{TrayReply: &desksidev1.ReplyToRequest{Code: code, Text: text, Chat: chat}}})
	if err != nil {
		return nil, err
	}
	return r.GetTrayRequest(), nil
}

func (a *IPCAgent) Updates() <-chan *desksidev1.HelpUpdate { return a.updates }

func (a *IPCAgent) SessionState() SessionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state
	return SessionState{Active: st.GetSessionActive(), Technician: st.GetTechnician(), Control: st.GetControl()}
}

func (a *IPCAgent) SessionChanges() <-chan struct{} { return a.changes }

func (a *IPCAgent) EndSession(ctx context.Context) error {
	_, err := a.call(ctx, &desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_TrayEndSession{TrayEndSession: &desksidev1.TrayEndSession{}}})
	if err != nil && err.Error() == ErrNoSession.Error() {
		return ErrNoSession
	}
	return err
}
