package usersession

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// DefaultSocket is where the agent service listens for its helpers and
// the users' trays.
const DefaultSocket = "/run/deskside-agent/agent.sock"

// Config configures a Runner.
type Config struct {
	// Socket is the IPC socket's path (default DefaultSocket).
	Socket string
	// Exe is the deskside-agent binary the helper runs (default this
	// process's executable); the user must be allowed to run it.
	Exe string
	// Finder finds the session (default: logind's records and the
	// registered sessions).
	Finder *Finder
	Logger *slog.Logger
	// HelperStderr gets the helper's log (default this process's stderr).
	HelperStderr io.Writer
	// StartTimeout bounds the helper's start, until its hello (default 15 s).
	StartTimeout time.Duration
	// EndGrace is how long a helper has to end its session when the agent
	// stops it, before it is cut off (default 5 s).
	EndGrace time.Duration
	// ConsentTimeout is how long the helper's consent prompt waits for the
	// user (0: the helper's default, docs/adr 28).
	ConsentTimeout time.Duration
	// AskTray, when set, asks a helper's consent question on the trays of
	// its user (agent/traysvc); unset, a helper's question is answered
	// with consent.ErrNoTray.
	AskTray AskTray
	// Serve, when set, gets every connection whose first frame is neither
	// a helper's hello nor a session registration (the tray's calls,
	// agent/traysvc), with that frame; it owns the connection.
	Serve func(c *localipc.Conn, first *desksidev1.LocalMessage)
}

// Runner is the service side: a link.DesktopRunner that runs each session
// in a helper process in the user's graphical session.
type Runner struct {
	cfg Config
	log *slog.Logger
	l   *localipc.Listener

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

// NewRunner listens on the IPC socket; Close stops it.
func NewRunner(cfg Config) (*Runner, error) {
	cfg.Socket = cmp.Or(cfg.Socket, DefaultSocket)
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, 15*time.Second)
	cfg.EndGrace = cmp.Or(cfg.EndGrace, 5*time.Second)
	if cfg.Finder == nil {
		cfg.Finder = &Finder{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HelperStderr == nil {
		cfg.HelperStderr = os.Stderr
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the agent's executable for the desktop helper: %w", err)
		}
		cfg.Exe = exe
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, pending: map[int32]chan *localipc.Conn{}, active: map[string]*helper{}, done: make(chan struct{})}
	l, err := localipc.Listen(cfg.Socket, r.check)
	if err != nil {
		return nil, err
	}
	r.l = l
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Close stops listening; running sessions end with their helpers.
func (r *Runner) Close() error {
	close(r.done)
	err := r.l.Close()
	r.wg.Wait()
	return err
}

// check admits root, the helpers this runner launched (their own uid,
// checked again at their hello), and users registering their session.
// Every local user may connect: what a connection may do depends on who
// it is (handle).
func (r *Runner) check(c localipc.Cred) error { return nil }

func (r *Runner) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if errors.Is(err, localipc.ErrRefused) {
			r.log.Warn("local IPC: refused a connection", "err", err)
			continue
		}
		if err != nil {
			select {
			case <-r.done:
			default:
				r.log.Error("local IPC: the socket stopped accepting connections; desktop sessions from the service will fail until the agent restarts", "err", err)
			}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(c)
		}()
	}
}

// handle reads a connection's first frame: a launched helper's hello (the
// peer must be that helper's process, with the user's uid) or a user's
// session registration (kept while the connection stays open).
func (r *Runner) handle(c *localipc.Conn) {
	var m desksidev1.LocalMessage
	if err := c.Recv(&m); err != nil {
		c.Close()
		return
	}
	peer := c.Peer()
	switch b := m.GetBody().(type) {
	case *desksidev1.LocalMessage_HelperHello:
		r.mu.Lock()
		ch := r.pending[peer.PID]
		delete(r.pending, peer.PID)
		r.mu.Unlock()
		if ch == nil {
			r.log.Warn("local IPC: refused a desktop helper this agent did not launch", "peer", peer.String())
			c.Close()
			return
		}
		ch <- c // the launcher checks the uid and owns c from here
	case *desksidev1.LocalMessage_RegisterSession:
		reg := b.RegisterSession
		if err := r.cfg.Finder.Register(peer.PID, peer.UID, reg.GetDisplay(), reg.GetXauthority()); err != nil {
			_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: err.Error()}}})
			c.Close()
			return
		}
		r.log.Info("a user session registered over local IPC", "peer", peer.String(), "display", reg.GetDisplay())
		_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}})
		for c.Recv(&m) == nil {
		}
		r.cfg.Finder.Unregister(peer.PID)
		c.Close()
	default:
		if r.cfg.Serve != nil {
			r.cfg.Serve(c, &m)
			return
		}
		c.Close()
	}
}

// Run finds the console's session, launches a helper in it and runs the
// session there; the reason it returns is the console's end reason. The
// session's notes (several sessions, a locked screen) are added to it.
func (r *Runner) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	s, err := r.cfg.Finder.Find(ctx)
	if err != nil {
		return err.Error()
	}
	ReportOwner(ctx, s.UID)
	for _, n := range s.Notes {
		r.log.Info("remote desktop: "+n, "session", req.GetSessionId(), "user", s.User)
	}
	reason := r.run(ctx, s, req, signal)
	if len(s.Notes) > 0 {
		reason += " (" + strings.Join(s.Notes, "; ") + ")"
	}
	return reason
}

func (r *Runner) run(ctx context.Context, s Session, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	t0 := time.Now()
	h, cmd, exited, err := r.launch(ctx, s)
	if err != nil {
		return err.Error()
	}
	r.log.Info("desktop helper started", "session", req.GetSessionId(), "user", s.User, "display", s.Display, "pid", cmd.Process.Pid, "took", time.Since(t0).String())
	defer func() {
		h.conn.Close()
		select {
		case <-exited.done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited.done
		}
	}()
	id := req.GetSessionId()
	r.mu.Lock()
	if r.active[id] != nil {
		r.mu.Unlock()
		return "a session with this id is already running"
	}
	r.active[id] = h
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
		h.failAcks(errors.New("the session ended"))
	}()
	if err := h.conn.Send(&desksidev1.LocalMessage{Id: h.nextID.Add(1), Body: &desksidev1.LocalMessage_StartDesktop{StartDesktop: req}}); err != nil {
		return r.gone(s, exited, err)
	}
	// The link going away ends the session in the helper; a helper that
	// does not end it within EndGrace is cut off.
	stop := context.AfterFunc(ctx, func() {
		_ = h.conn.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_EndDesktop{EndDesktop: &desksidev1.EndDesktop{SessionId: id, Reason: "the agent stopped the session"}}})
		time.AfterFunc(r.cfg.EndGrace, func() { h.conn.Close() })
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
			return r.gone(s, exited, err)
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
				_ = h.conn.Send(askTrayAnswer(qctx, r.cfg.AskTray, s.UID, ref, q))
			}()
		case *desksidev1.LocalMessage_SignalAck:
			h.ack(m.GetRefId(), nil)
		case *desksidev1.LocalMessage_Error:
			h.ack(m.GetRefId(), errors.New(b.Error.GetMessage()))
		case *desksidev1.LocalMessage_DesktopEnded:
			// A logout ends the session in the helper first (its X
			// server went): say so.
			if !r.cfg.Finder.Alive(s) {
				return fmt.Sprintf("%s logged out; the session ended (%s)", s.User, b.DesktopEnded.GetReason())
			}
			return b.DesktopEnded.GetReason()
		}
	}
}

// gone is the end reason when the helper's connection broke: the user
// logged out (logind no longer lists their session) or the helper
// stopped.
func (r *Runner) gone(s Session, exited *exit, err error) string {
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
	r.log.Warn("desktop helper gone", "user", s.User, "err", why)
	// logind drops the session a moment after its processes go.
	for range 10 {
		if !r.cfg.Finder.Alive(s) {
			return fmt.Sprintf("%s logged out; the session ended", s.User)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("the desktop helper in %s's session stopped (%s); the session ended", s.User, why)
}

// exit is a helper's end: done closes when it exited, with err.
type exit struct {
	done chan struct{}
	err  error
}

// launch starts the helper as s's user, with a clean environment holding
// s's display, and waits for its hello.
func (r *Runner) launch(ctx context.Context, s Session) (*helper, *exec.Cmd, *exit, error) {
	args := []string{"desktop-helper", "--socket", r.l.Path()}
	if r.cfg.ConsentTimeout > 0 {
		args = append(args, "--consent-timeout", r.cfg.ConsentTimeout.String())
	}
	cmd := exec.Command(r.cfg.Exe, args...)
	cmd.Env = helperEnv(s)
	cmd.Dir = "/"
	if s.Home != "" && dirExists(s.Home) {
		cmd.Dir = s.Home
	}
	cmd.Stdout = r.cfg.HelperStderr
	cmd.Stderr = r.cfg.HelperStderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: s.Groups},
		Setsid:     true,
	}
	hello := make(chan *localipc.Conn, 1)
	// The pid is known only after the start: hold the lock across it so
	// that the helper's hello finds its channel.
	r.mu.Lock()
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("start the desktop helper as %s: %w", s.User, err)
	}
	pid := int32(cmd.Process.Pid)
	r.pending[pid] = hello
	r.mu.Unlock()
	exited := &exit{done: make(chan struct{})}
	go func() {
		exited.err = cmd.Wait()
		close(exited.done)
	}()
	cleanup := func() {
		r.mu.Lock()
		delete(r.pending, pid)
		r.mu.Unlock()
	}
	select {
	case c := <-hello:
		if err := localipc.RootOr(s.UID)(c.Peer()); err != nil {
			c.Close()
			_ = cmd.Process.Kill()
			return nil, nil, nil, err
		}
		return &helper{conn: c, acks: map[uint64]chan error{}}, cmd, exited, nil
	case <-exited.done:
		cleanup()
		return nil, nil, nil, fmt.Errorf("the desktop helper in %s's session exited before it was ready (%v); the agent's log has its error", s.User, exited.err)
	case <-time.After(r.cfg.StartTimeout):
		cleanup()
		_ = cmd.Process.Kill()
		<-exited.done
		return nil, nil, nil, fmt.Errorf("the desktop helper in %s's session did not connect within %v", s.User, r.cfg.StartTimeout)
	case <-ctx.Done():
		cleanup()
		_ = cmd.Process.Kill()
		<-exited.done
		return nil, nil, nil, ctx.Err()
	}
}

// helperEnv is the helper's whole environment: the user's identity and
// session, nothing of the service's.
func helperEnv(s Session) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"DISPLAY=" + s.Display,
		"USER=" + s.User, "LOGNAME=" + s.User,
	}
	if s.XAuthority != "" {
		env = append(env, "XAUTHORITY="+s.XAuthority)
	}
	if s.Home != "" {
		env = append(env, "HOME="+s.Home)
	}
	if run := "/run/user/" + strconv.FormatUint(uint64(s.UID), 10); dirExists(run) {
		env = append(env, "XDG_RUNTIME_DIR="+run)
	}
	return env
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Signal passes the viewer's signaling to the session's helper and waits
// for its answer.
func (r *Runner) Signal(sig *desksidev1.DesktopSignal) error {
	r.mu.Lock()
	h := r.active[sig.GetSessionId()]
	r.mu.Unlock()
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
func (r *Runner) End(id, reason string) {
	r.mu.Lock()
	h := r.active[id]
	r.mu.Unlock()
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
