package localipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// identifyTimeout bounds how long a client has to send its first frame's
// length, which the listener must read before it can ask who the client
// is (ImpersonateNamedPipeClient takes the security context of the last
// message read).
const identifyTimeout = 10 * time.Second

var (
	modadvapi32                     = windows.NewLazySystemDLL("advapi32.dll")
	modkernel32                     = windows.NewLazySystemDLL("kernel32.dll")
	procImpersonateNamedPipeClient  = modadvapi32.NewProc("ImpersonateNamedPipeClient")
	procGetNamedPipeServerProcessId = modkernel32.NewProc("GetNamedPipeServerProcessId")
)

// Listener accepts connections on the named pipe and checks their peers.
type Listener struct {
	l     net.Listener
	path  string
	check Check

	mu          sync.Mutex
	max         int
	identifying map[net.Conn]struct{} // closed by Close

	ready     chan accepted
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type accepted struct {
	c   *Conn
	err error
}

// Listen listens on the named pipe path (PipeName; "" means PipeName) with
// the security descriptor PipeSDDL. A pipe of that name that exists
// already (another agent, or a process squatting the name) is an error.
// Accept identifies each client by its user SID and checks it with check.
func Listen(path string, check Check) (*Listener, error) {
	if check == nil {
		return nil, errors.New("localipc: Listen needs a Check")
	}
	if path == "" {
		path = PipeName
	}
	if !strings.HasPrefix(strings.ToLower(path), `\\.\pipe\`) {
		return nil, fmt.Errorf(`localipc: %q is not a local named pipe; use one under \\.\pipe\ (default %s)`, path, PipeName)
	}
	l, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: PipeSDDL, InputBufferSize: 64 << 10, OutputBufferSize: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("localipc: listen on %s: %w (is another deskside-agent running? only one process may serve the pipe)", path, err)
	}
	ln := &Listener{l: l, path: path, check: check, identifying: map[net.Conn]struct{}{}, ready: make(chan accepted), done: make(chan struct{})}
	ln.wg.Add(1)
	go ln.acceptLoop()
	return ln, nil
}

// Path is the pipe's name.
func (l *Listener) Path() string { return l.path }

// SetMaxFrame caps the frames of the connections accepted from now on.
func (l *Listener) SetMaxFrame(n int) {
	l.mu.Lock()
	l.max = n
	l.mu.Unlock()
}

// acceptLoop accepts clients and identifies each in its own goroutine, so
// that a client that does not send does not hold up the others.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.l.Accept()
		if err != nil {
			l.deliver(accepted{err: err})
			return
		}
		l.mu.Lock()
		l.identifying[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			a := l.identify(c)
			l.mu.Lock()
			delete(l.identifying, c)
			l.mu.Unlock()
			l.deliver(a)
		}()
	}
}

func (l *Listener) deliver(a accepted) {
	select {
	case l.ready <- a:
	case <-l.done:
		if a.c != nil {
			a.c.Close()
		}
	}
}

// identify reads the client's identity: its process id as the pipe
// recorded it, and its user SID by impersonating it after its first bytes
// (a client that connected anonymously, or sends nothing in time, is
// refused); then the Check.
func (l *Listener) identify(c net.Conn) accepted {
	refuse := func(err error) accepted {
		c.Close()
		return accepted{err: fmt.Errorf("%w: %v", ErrRefused, err)}
	}
	h, err := pipeHandle(c)
	if err != nil {
		return refuse(err)
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(h, &pid); err != nil {
		return refuse(fmt.Errorf("read the pipe client's process id: %w", err))
	}
	var hdr [4]byte
	_ = c.SetReadDeadline(time.Now().Add(identifyTimeout))
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return refuse(fmt.Errorf("pid %d sent no frame within %v: %w", pid, identifyTimeout, err))
	}
	_ = c.SetReadDeadline(time.Time{})
	sid, err := clientSID(h)
	if err != nil {
		return refuse(fmt.Errorf("pid %d: read the pipe client's identity: %w", pid, err))
	}
	cred := Cred{PID: int32(pid), UID: SIDUID(sid), SID: sid}
	if err := l.check(cred); err != nil {
		c.Close()
		return accepted{err: err}
	}
	l.mu.Lock()
	max := l.max
	l.mu.Unlock()
	return accepted{c: NewConn(&replayConn{Conn: c, pre: hdr[:]}, cred, max)}
}

// Accept waits for the next identified connection. A peer the Check
// refuses, or whose identity cannot be read, is closed at once and
// returned as an error wrapping ErrRefused (Accept can be called again);
// any other error ends the listener.
func (l *Listener) Accept() (*Conn, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening; connections being identified are closed.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.l.Close()
		l.mu.Lock()
		for c := range l.identifying {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Dial connects to the service's pipe. The client allows identification
// (not impersonation) of itself; the peer it returns is the pipe's owner,
// which only a process of that account (or one with the restore
// privilege) can set: SYSTEM for the agent service, so RootOr(0) checks
// that the pipe is the service's and not a user's squatting its name.
func Dial(path string) (*Conn, error) {
	if path == "" {
		path = PipeName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := winio.DialPipeAccessImpLevel(ctx, path, pipeClientAccess, winio.PipeImpLevelIdentification)
	if err != nil {
		return nil, fmt.Errorf("localipc: connect to the agent service at %s: %w (is the Deskside agent service running?)", path, err)
	}
	cred, err := serverCred(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return NewConn(c, cred, 0), nil
}

// serverCred is the pipe server's process id and the pipe's owner.
func serverCred(c net.Conn) (Cred, error) {
	h, err := pipeHandle(c)
	if err != nil {
		return Cred{}, err
	}
	var pid uint32
	if r, _, e := procGetNamedPipeServerProcessId.Call(uintptr(h), uintptr(unsafe.Pointer(&pid))); r == 0 {
		return Cred{}, fmt.Errorf("localipc: read the pipe server's process id: %w", e)
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return Cred{}, fmt.Errorf("localipc: read the pipe's owner: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return Cred{}, fmt.Errorf("localipc: the pipe has no owner (%v)", err)
	}
	sid := owner.String()
	return Cred{PID: int32(pid), UID: SIDUID(sid), SID: sid}, nil
}

func pipeHandle(c net.Conn) (windows.Handle, error) {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return 0, fmt.Errorf("localipc: %T is not a named pipe", c)
	}
	return windows.Handle(f.Fd()), nil
}

// clientSID impersonates the pipe's client on a thread of its own, reads
// the user SID of the thread's token and reverts. A thread that cannot
// revert is never used again: its goroutine ends locked to it, and the
// runtime ends the thread.
func clientSID(h windows.Handle) (string, error) {
	type result struct {
		sid string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		sid, reverted, err := impersonatedSID(h)
		ch <- result{sid, err}
		if reverted {
			runtime.UnlockOSThread()
		}
	}()
	r := <-ch
	return r.sid, r.err
}

func impersonatedSID(h windows.Handle) (sid string, reverted bool, err error) {
	if r, _, e := procImpersonateNamedPipeClient.Call(uintptr(h)); r == 0 {
		return "", true, fmt.Errorf("ImpersonateNamedPipeClient: %w", e)
	}
	var tok windows.Token
	terr := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY, true, &tok)
	if err := windows.RevertToSelf(); err != nil {
		if terr == nil {
			tok.Close()
		}
		return "", false, fmt.Errorf("RevertToSelf: %w", err)
	}
	if terr != nil {
		// ERROR_CANT_OPEN_ANONYMOUS: the client connected anonymously.
		return "", true, fmt.Errorf("the client's token (it must connect allowing identification): %w", terr)
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return "", true, fmt.Errorf("the client's user: %w", err)
	}
	return u.User.Sid.String(), true, nil
}
