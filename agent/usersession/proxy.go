//go:build linux || windows

package usersession

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// proxy is the platform-free part of a Runner: the IPC listener, the
// launched helpers waiting for their hello, and the sessions it proxies
// between the link and each session's helper. The platform's Runner finds
// the console user and starts the helper as them (runner_linux.go,
// runner_windows.go).
type proxy struct {
	log          *slog.Logger
	l            *localipc.Listener
	startTimeout time.Duration
	endGrace     time.Duration
	// serve gets the connections that are neither a helper's hello nor a
	// registration (Config.Serve); nil closes them.
	serve func(c *localipc.Conn, first *desksidev1.LocalMessage)
	// askTray asks a helper's consent question on its user's trays
	// (Config.AskTray); nil: no tray can be asked.
	askTray AskTray
	// register handles a RegisterSession and owns c; nil refuses it.
	register func(c *localipc.Conn, m *desksidev1.LocalMessage)

	mu      sync.Mutex
	pending map[int32]chan *localipc.Conn // launched helpers by pid, until their hello
	active  map[string]*helper            // running sessions by id
	done    chan struct{}
	wg      sync.WaitGroup
}

// helper is one launched helper serving one session.
type helper struct {
	conn   *localipc.Conn
	nextID atomic.Uint64
	mu     sync.Mutex
	acks   map[uint64]chan error
}

// exit is a helper's end: done closes when it exited, with err.
type exit struct {
	done chan struct{}
	err  error
}

// defaults fills in the settings both platforms' Configs share: the
// socket (DefaultSocket), this executable as the helper's, the default
// logger, this process's stderr for the helper's log, 15 s for a helper's
// start and 5 s for its end.
func defaults(socket, exe *string, log **slog.Logger, stderr *io.Writer, startTimeout, endGrace *time.Duration) error {
	*socket = cmp.Or(*socket, DefaultSocket)
	*startTimeout = cmp.Or(*startTimeout, 15*time.Second)
	*endGrace = cmp.Or(*endGrace, 5*time.Second)
	if *log == nil {
		*log = slog.Default()
	}
	if *stderr == nil {
		*stderr = os.Stderr
	}
	if *exe == "" {
		e, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the agent's executable for the desktop helper: %w", err)
		}
		*exe = e
	}
	return nil
}

// start serves l until Close.
func (p *proxy) start(l *localipc.Listener) {
	p.l = l
	p.pending = map[int32]chan *localipc.Conn{}
	p.active = map[string]*helper{}
	p.done = make(chan struct{})
	p.wg.Add(1)
	go p.accept()
}

// Close stops listening; running sessions end with their helpers.
func (p *proxy) Close() error {
	close(p.done)
	err := p.l.Close()
	p.wg.Wait()
	return err
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if errors.Is(err, localipc.ErrRefused) {
			p.log.Warn("local IPC: refused a connection", "err", err)
			continue
		}
		if err != nil {
			select {
			case <-p.done:
			default:
				p.log.Error("local IPC: the socket stopped accepting connections; desktop sessions from the service will fail until the agent restarts", "err", err)
			}
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

// handle reads a connection's first frame: a launched helper's hello (the
// peer must be that helper's process, with the user's identity, which its
// launcher checks), a user's session registration, or a tray's call.
func (p *proxy) handle(c *localipc.Conn) {
	var m desksidev1.LocalMessage
	if err := c.Recv(&m); err != nil {
		c.Close()
		return
	}
	peer := c.Peer()
	switch m.GetBody().(type) {
	case *desksidev1.LocalMessage_HelperHello:
		p.mu.Lock()
		ch := p.pending[peer.PID]
		delete(p.pending, peer.PID)
		p.mu.Unlock()
		if ch == nil {
			p.log.Warn("local IPC: refused a desktop helper this agent did not launch", "peer", peer.String())
			c.Close()
			return
		}
		ch <- c // the launcher checks the identity and owns c from here
	case *desksidev1.LocalMessage_RegisterSession:
		if p.register == nil {
			_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: "this agent finds the console session itself; registering one is not needed here"}}})
			c.Close()
			return
		}
		p.register(c, &m)
	default:
		if p.serve != nil {
			p.serve(c, &m)
			return
		}
		c.Close()
	}
}

// launch starts a helper for user with start and waits for its hello,
// which must come from the process started and pass check.
func (p *proxy) launch(ctx context.Context, user string, start func() (*os.Process, func() error, error), check localipc.Check) (*helper, *os.Process, *exit, error) {
	hello := make(chan *localipc.Conn, 1)
	// The pid is known only after the start: hold the lock across it so
	// that the helper's hello finds its channel.
	p.mu.Lock()
	proc, wait, err := start()
	if err != nil {
		p.mu.Unlock()
		return nil, nil, nil, err
	}
	pid := int32(proc.Pid)
	p.pending[pid] = hello
	p.mu.Unlock()
	exited := &exit{done: make(chan struct{})}
	go func() {
		exited.err = wait()
		close(exited.done)
	}()
	cleanup := func() {
		p.mu.Lock()
		delete(p.pending, pid)
		p.mu.Unlock()
	}
	select {
	case c := <-hello:
		if err := check(c.Peer()); err != nil {
			c.Close()
			_ = proc.Kill()
			return nil, nil, nil, err
		}
		return &helper{conn: c, acks: map[uint64]chan error{}}, proc, exited, nil
	case <-exited.done:
		cleanup()
		return nil, nil, nil, fmt.Errorf("the desktop helper in %s's session exited before it was ready (%v); the agent's log has its error", user, exited.err)
	case <-time.After(p.startTimeout):
		cleanup()
		_ = proc.Kill()
		<-exited.done
		return nil, nil, nil, fmt.Errorf("the desktop helper in %s's session did not connect within %v", user, p.startTimeout)
	case <-ctx.Done():
		cleanup()
		_ = proc.Kill()
		<-exited.done
		return nil, nil, nil, ctx.Err()
	}
}

// session runs req in the launched helper h until it ends; the reason it
// returns is the console's end reason. alive reports whether user (uid,
// whom the helper's hello was checked against) is still logged in to the
// session the helper serves.
func (p *proxy) session(ctx context.Context, h *helper, proc *os.Process, exited *exit, user string, uid uint32, alive func() bool, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	defer func() {
		h.conn.Close()
		select {
		case <-exited.done:
		case <-time.After(3 * time.Second):
			_ = proc.Kill()
			<-exited.done
		}
	}()
	id := req.GetSessionId()
	p.mu.Lock()
	if p.active[id] != nil {
		p.mu.Unlock()
		return "a session with this id is already running"
	}
	p.active[id] = h
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.active, id)
		p.mu.Unlock()
		h.failAcks(errors.New("the session ended"))
	}()
	if err := h.conn.Send(&desksidev1.LocalMessage{Id: h.nextID.Add(1), Body: &desksidev1.LocalMessage_StartDesktop{StartDesktop: req}}); err != nil {
		return p.gone(user, alive, exited, err)
	}
	// The link going away ends the session in the helper; a helper that
	// does not end it within endGrace is cut off.
	stop := context.AfterFunc(ctx, func() {
		_ = h.conn.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_EndDesktop{EndDesktop: &desksidev1.EndDesktop{SessionId: id, Reason: "the agent stopped the session"}}})
		time.AfterFunc(p.endGrace, func() { h.conn.Close() })
	})
	defer stop()
	// The helper's consent questions (asked on the user's trays) close
	// when the session ends.
	qctx, qcancel := context.WithCancel(ctx)
	var asks sync.WaitGroup
	defer func() {
		qcancel()
		asks.Wait()
	}()
	for {
		var m desksidev1.LocalMessage
		if err := h.conn.Recv(&m); err != nil {
			if ctx.Err() != nil {
				return "the agent stopped the session"
			}
			return p.gone(user, alive, exited, err)
		}
		switch b := m.GetBody().(type) {
		case *desksidev1.LocalMessage_DesktopSignal:
			if err := signal(b.DesktopSignal); err != nil {
				return "the relay link failed: " + err.Error()
			}
		case *desksidev1.LocalMessage_ConsentAsk:
			// Only the trays of the helper's user (checked at its hello)
			// are asked.
			ref, q := m.GetId(), b.ConsentAsk
			asks.Add(1)
			go func() {
				defer asks.Done()
				_ = h.conn.Send(askTrayAnswer(qctx, p.askTray, uid, ref, q))
			}()
		case *desksidev1.LocalMessage_SignalAck:
			h.ack(m.GetRefId(), nil)
		case *desksidev1.LocalMessage_Error:
			h.ack(m.GetRefId(), errors.New(b.Error.GetMessage()))
		case *desksidev1.LocalMessage_DesktopEnded:
			// A logout ends the session in the helper first (its display
			// went): say so.
			if !alive() {
				return fmt.Sprintf("%s logged out; the session ended (%s)", user, b.DesktopEnded.GetReason())
			}
			return b.DesktopEnded.GetReason()
		}
	}
}

// gone is the end reason when the helper's connection broke: the user
// logged out (their session is no longer listed) or the helper stopped.
func (p *proxy) gone(user string, alive func() bool, exited *exit, err error) string {
	var werr error
	select {
	case <-exited.done:
		werr = exited.err
	case <-time.After(2 * time.Second):
	}
	why := "it stopped"
	if werr != nil {
		why = werr.Error()
	} else if !errors.Is(err, io.EOF) {
		why = err.Error()
	}
	p.log.Warn("desktop helper gone", "user", user, "err", why)
	// logind drops the session a moment after its processes go.
	for range 10 {
		if !alive() {
			return fmt.Sprintf("%s logged out; the session ended", user)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("the desktop helper in %s's session stopped (%s); the session ended", user, why)
}

// Signal passes the viewer's signaling to the session's helper and waits
// for its answer.
func (p *proxy) Signal(sig *desksidev1.DesktopSignal) error {
	p.mu.Lock()
	h := p.active[sig.GetSessionId()]
	p.mu.Unlock()
	if h == nil {
		return fmt.Errorf("no desktop session %s on this device", sig.GetSessionId())
	}
	id := h.nextID.Add(1)
	ch := make(chan error, 1)
	h.mu.Lock()
	h.acks[id] = ch
	h.mu.Unlock()
	if err := h.conn.Send(&desksidev1.LocalMessage{Id: id, Body: &desksidev1.LocalMessage_DesktopSignal{DesktopSignal: sig}}); err != nil {
		h.ack(id, nil)
		return fmt.Errorf("the desktop helper is gone: %w", err)
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		h.ack(id, nil)
		return errors.New("the desktop helper did not answer the signal within 10 s")
	}
}

// End ends a session.
func (p *proxy) End(id, reason string) {
	p.mu.Lock()
	h := p.active[id]
	p.mu.Unlock()
	if h != nil {
		_ = h.conn.Send(&desksidev1.LocalMessage{Id: h.nextID.Add(1), Body: &desksidev1.LocalMessage_EndDesktop{EndDesktop: &desksidev1.EndDesktop{SessionId: id, Reason: reason}}})
	}
}

// ack delivers the answer to request id (and forgets it).
func (h *helper) ack(id uint64, err error) {
	h.mu.Lock()
	ch := h.acks[id]
	delete(h.acks, id)
	h.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// failAcks answers every waiting Signal with err.
func (h *helper) failAcks(err error) {
	h.mu.Lock()
	acks := h.acks
	h.acks = map[uint64]chan error{}
	h.mu.Unlock()
	for _, ch := range acks {
		ch <- err
	}
}
