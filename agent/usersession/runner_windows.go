package usersession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// DefaultSocket is the named pipe the agent service listens on for its
// helpers and the users' trays.
const DefaultSocket = localipc.PipeName

// noConsoleSession is WTSGetActiveConsoleSessionId's answer when no
// session is attached to the console (during a session switch).
const noConsoleSession = 0xFFFFFFFF

// Config configures a Runner.
type Config struct {
	// Socket is the named pipe (default DefaultSocket).
	Socket string
	// Exe is the deskside-agent binary the helper runs (default this
	// process's executable); the user must be allowed to run it.
	Exe    string
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
	// Serve, when set, gets every connection whose first frame is not a
	// helper's hello (the tray's calls, agent/traysvc), with that frame;
	// it owns the connection.
	Serve func(c *localipc.Conn, first *desksidev1.LocalMessage)
}

// Runner is the service side on Windows: a link.DesktopRunner that runs
// each session in a helper process started in the console user's session
// (WTSQueryUserToken, CreateProcessAsUser on winsta0\default), which
// connects back over the named pipe.
type Runner struct {
	proxy
	cfg Config
}

// NewRunner listens on the named pipe; Close stops it.
func NewRunner(cfg Config) (*Runner, error) {
	if err := defaults(&cfg.Socket, &cfg.Exe, &cfg.Logger, &cfg.HelperStderr, &cfg.StartTimeout, &cfg.EndGrace); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, proxy: proxy{log: cfg.Logger, startTimeout: cfg.StartTimeout, endGrace: cfg.EndGrace, serve: cfg.Serve, askTray: cfg.AskTray}}
	// Every interactive user may connect (the pipe's ACL); what a
	// connection may do depends on its SID (handle, the launcher's check).
	l, err := localipc.Listen(cfg.Socket, func(localipc.Cred) error { return nil })
	if err != nil {
		return nil, err
	}
	r.start(l)
	return r, nil
}

// UseHelper reports whether the agent serves remote desktops through a
// helper in the console user's session: when it runs as LocalSystem (the
// service), which cannot reach a user's desktop from session 0.
func UseHelper(display string) bool {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	return err == nil && u.User.Sid.String() == localipc.SystemSID
}

// consoleUser is the user logged in at the console.
type consoleUser struct {
	session uint32
	name    string // DOMAIN\name
	sid     string
	token   windows.Token // a primary token of the user, in their session
}

// console finds the console session's user: ErrNoSession when nobody is
// logged in at the console.
func console() (consoleUser, error) {
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noConsoleSession {
		return consoleUser{}, ErrNoSession
	}
	var tok windows.Token
	if err := windows.WTSQueryUserToken(id, &tok); err != nil {
		if errors.Is(err, windows.ERROR_NO_TOKEN) {
			return consoleUser{}, ErrNoSession
		}
		return consoleUser{}, fmt.Errorf("read the console user's token (WTSQueryUserToken, session %d): %w; the agent must run as the LocalSystem service (deskside-agent install)", id, err)
	}
	u, err := tok.GetTokenUser()
	if err != nil {
		tok.Close()
		return consoleUser{}, fmt.Errorf("read the console user's SID: %w", err)
	}
	c := consoleUser{session: id, sid: u.User.Sid.String(), token: tok}
	c.name = c.sid
	if account, domain, _, err := u.User.Sid.LookupAccount(""); err == nil {
		c.name = account
		if domain != "" {
			c.name = domain + `\` + account
		}
	}
	return c, nil
}

// consoleIs reports whether sid is still the console's user.
func consoleIs(sid string) bool {
	c, err := console()
	if err != nil {
		return false
	}
	c.token.Close()
	return c.sid == sid
}

// Run finds the console's user, launches a helper in their session and
// runs the session there; the reason it returns is the console's end
// reason.
func (r *Runner) Run(ctx context.Context, req *desksidev1.StartDesktop, signal func(*desksidev1.DesktopSignal) error) string {
	u, err := console()
	if err != nil {
		return err.Error()
	}
	defer u.token.Close()
	ReportOwner(ctx, localipc.SIDUID(u.sid))
	t0 := time.Now()
	// The helper's hello must come from the process started, as the
	// session's user: the pipe client's SID is compared with the token's.
	h, proc, exited, err := r.launch(ctx, u.name, func() (*os.Process, func() error, error) { return r.startHelper(u) }, localipc.SIDIs(u.sid))
	if err != nil {
		return err.Error()
	}
	r.log.Info("desktop helper started", "session", req.GetSessionId(), "user", u.name, "windows_session", u.session, "pid", proc.Pid, "took", time.Since(t0).String())
	return r.session(ctx, h, proc, exited, u.name, localipc.SIDUID(u.sid), func() bool { return consoleIs(u.sid) }, req, signal)
}

// startHelper starts the helper with u's token on the interactive desktop
// of u's session (winsta0\default), with u's own environment
// (CreateEnvironmentBlock), its working directory u's profile, and its
// stdout and stderr into HelperStderr.
func (r *Runner) startHelper(u consoleUser) (*os.Process, func() error, error) {
	fail := func(err error) (*os.Process, func() error, error) {
		return nil, nil, fmt.Errorf("start the desktop helper as %s: %w", u.name, err)
	}
	userEnv, err := u.token.Environ(false)
	if err != nil {
		return fail(fmt.Errorf("the user's environment (CreateEnvironmentBlock): %w", err))
	}
	env := sessionEnv(userEnv)
	block, err := envBlock(env)
	if err != nil {
		return fail(err)
	}
	dir := envValue(env, "USERPROFILE")
	if dir == "" {
		dir, err = u.token.GetUserProfileDirectory()
		if err != nil {
			return fail(fmt.Errorf("the user's profile directory: %w", err))
		}
	}
	cmdline, err := windows.UTF16PtrFromString(windows.ComposeCommandLine(append([]string{r.cfg.Exe}, helperArgs(r.l.Path(), r.cfg.ConsentTimeout)...)))
	if err != nil {
		return fail(err)
	}
	exe, err := windows.UTF16PtrFromString(r.cfg.Exe)
	if err != nil {
		return fail(err)
	}
	dir16, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fail(err)
	}
	desktop, _ := windows.UTF16PtrFromString(`winsta0\default`)

	// The helper's stdout and stderr: a pipe whose write end only the
	// helper inherits (PROC_THREAD_ATTRIBUTE_HANDLE_LIST). ForkLock keeps
	// the inheritable end out of processes os/exec starts meanwhile.
	syscall.ForkLock.Lock()
	var rd, wr windows.Handle
	sa := windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), InheritHandle: 1}
	if err := windows.CreatePipe(&rd, &wr, &sa, 0); err != nil {
		syscall.ForkLock.Unlock()
		return fail(fmt.Errorf("a pipe for its log: %w", err))
	}
	_ = windows.SetHandleInformation(rd, windows.HANDLE_FLAG_INHERIT, 0)
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		syscall.ForkLock.Unlock()
		windows.CloseHandle(rd)
		windows.CloseHandle(wr)
		return fail(err)
	}
	defer attrs.Delete()
	inherit := []windows.Handle{wr}
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST, unsafe.Pointer(&inherit[0]), unsafe.Sizeof(inherit[0])*uintptr(len(inherit))); err != nil {
		syscall.ForkLock.Unlock()
		windows.CloseHandle(rd)
		windows.CloseHandle(wr)
		return fail(err)
	}
	si := windows.StartupInfoEx{
		StartupInfo: windows.StartupInfo{
			Cb:        uint32(unsafe.Sizeof(windows.StartupInfoEx{})),
			Desktop:   desktop,
			Flags:     windows.STARTF_USESTDHANDLES,
			StdOutput: wr,
			StdErr:    wr,
		},
		ProcThreadAttributeList: attrs.List(),
	}
	var pi windows.ProcessInformation
	flags := uint32(windows.CREATE_UNICODE_ENVIRONMENT | windows.CREATE_NO_WINDOW | windows.EXTENDED_STARTUPINFO_PRESENT)
	err = windows.CreateProcessAsUser(u.token, exe, cmdline, nil, nil, true, flags, &block[0], dir16, &si.StartupInfo, &pi)
	windows.CloseHandle(wr)
	syscall.ForkLock.Unlock()
	if err != nil {
		windows.CloseHandle(rd)
		return fail(fmt.Errorf("CreateProcessAsUser in session %d: %w", u.session, err))
	}
	windows.CloseHandle(pi.Thread)
	// The process handle is held until os has its own, so the pid cannot
	// name another process in between.
	proc, err := os.FindProcess(int(pi.ProcessId))
	windows.CloseHandle(pi.Process)
	if err != nil {
		windows.CloseHandle(rd)
		return fail(err)
	}
	logs := os.NewFile(uintptr(rd), "desktop-helper-log")
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(r.cfg.HelperStderr, logs)
		logs.Close()
	}()
	wait := func() error {
		st, err := proc.Wait()
		<-copied
		if err != nil {
			return err
		}
		if !st.Success() {
			return fmt.Errorf("exit status %d", st.ExitCode())
		}
		return nil
	}
	return proc, wait, nil
}
