package usersession

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
	proxy
	cfg Config
}

// NewRunner listens on the IPC socket; Close stops it.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.Finder == nil {
		cfg.Finder = &Finder{}
	}
	if err := defaults(&cfg.Socket, &cfg.Exe, &cfg.Logger, &cfg.HelperStderr, &cfg.StartTimeout, &cfg.EndGrace); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, proxy: proxy{log: cfg.Logger, startTimeout: cfg.StartTimeout, endGrace: cfg.EndGrace, serve: cfg.Serve, askTray: cfg.AskTray}}
	r.register = r.registerSession
	l, err := localipc.Listen(cfg.Socket, r.check)
	if err != nil {
		return nil, err
	}
	r.start(l)
	return r, nil
}

// UseHelper reports whether the agent serves remote desktops through a
// helper in the console user's session: as a root service with no display
// of its own. Otherwise (make run, --display) it captures in process.
func UseHelper(display string) bool { return os.Geteuid() == 0 && display == "" }

// check admits root, the helpers this runner launched (their own uid,
// checked again at their hello), and users registering their session.
// Every local user may connect: what a connection may do depends on who
// it is (handle).
func (r *Runner) check(c localipc.Cred) error { return nil }

// registerSession keeps a user's session registration while its
// connection stays open.
func (r *Runner) registerSession(c *localipc.Conn, m *desksidev1.LocalMessage) {
	peer := c.Peer()
	reg := m.GetRegisterSession()
	if err := r.cfg.Finder.Register(peer.PID, peer.UID, reg.GetDisplay(), reg.GetXauthority()); err != nil {
		_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: err.Error()}}})
		c.Close()
		return
	}
	r.log.Info("a user session registered over local IPC", "peer", peer.String(), "display", reg.GetDisplay())
	_ = c.Send(&desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}})
	for c.Recv(m) == nil {
	}
	r.cfg.Finder.Unregister(peer.PID)
	c.Close()
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
	h, proc, exited, err := r.launch(ctx, s.User, func() (*os.Process, func() error, error) { return r.startHelper(s) }, localipc.RootOr(s.UID))
	if err != nil {
		return err.Error()
	}
	r.log.Info("desktop helper started", "session", req.GetSessionId(), "user", s.User, "display", s.Display, "pid", proc.Pid, "took", time.Since(t0).String())
	return r.session(ctx, h, proc, exited, s.User, s.UID, func() bool { return r.cfg.Finder.Alive(s) }, req, signal)
}

// startHelper starts the helper as s's user, with a clean environment
// holding s's display.
func (r *Runner) startHelper(s Session) (*os.Process, func() error, error) {
	cmd := exec.Command(r.cfg.Exe, helperArgs(r.l.Path(), r.cfg.ConsentTimeout)...)
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
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the desktop helper as %s: %w", s.User, err)
	}
	return cmd.Process, cmd.Wait, nil
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
