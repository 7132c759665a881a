package localipc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Listener accepts connections on a Unix socket and checks their peers.
type Listener struct {
	l     *net.UnixListener
	path  string
	check Check
	max   int
}

// Listen listens on the Unix socket path (its directory is created 0755;
// a stale socket is replaced, a live one is an error). The socket is open to every local user
// (0666): Accept checks each peer with check.
func Listen(path string, check Check) (*Listener, error) {
	if check == nil {
		return nil, errors.New("localipc: Listen needs a Check")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("localipc: socket directory: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("localipc: another process serves %s already (is another deskside-agent running?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("localipc: remove the old socket: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("localipc: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, fmt.Errorf("localipc: open the socket to the users: %w", err)
	}
	return &Listener{l: l, path: path, check: check}, nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// SetMaxFrame caps the frames of the connections accepted from now on.
func (l *Listener) SetMaxFrame(n int) { l.max = n }

// Accept waits for the next connection. A peer the Check refuses is
// closed at once and returned as an error wrapping ErrRefused (Accept can
// be called again); any other error ends the listener.
func (l *Listener) Accept() (*Conn, error) {
	c, err := l.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	cred, err := PeerCred(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err := l.check(cred); err != nil {
		c.Close()
		return nil, err
	}
	return NewConn(c, cred, l.max), nil
}

// Close stops listening and removes the socket.
func (l *Listener) Close() error { return l.l.Close() }

// Dial connects to the service's socket; the peer is the service.
func Dial(path string) (*Conn, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("localipc: connect to the agent service at %s: %w", path, err)
	}
	cred, err := PeerCred(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return NewConn(c, cred, 0), nil
}

// PeerCred reads the credentials of c's peer (SO_PEERCRED): the process
// that connected, as it was at connect time.
func PeerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if serr != nil {
		return Cred{}, fmt.Errorf("localipc: read the peer's credentials (SO_PEERCRED): %w", serr)
	}
	return Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}
