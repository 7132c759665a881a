//go:build !linux && !windows

package localipc

// Listener is not built on this platform (Linux: a Unix socket; Windows:
// a named pipe).
type Listener struct{}

// Listen returns ErrUnsupported on this platform.
func Listen(path string, check Check) (*Listener, error) { return nil, ErrUnsupported }

// Path is "".
func (l *Listener) Path() string { return "" }

// SetMaxFrame does nothing on this platform.
func (l *Listener) SetMaxFrame(int) {}

// Accept returns ErrUnsupported.
func (l *Listener) Accept() (*Conn, error) { return nil, ErrUnsupported }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// Dial returns ErrUnsupported on this platform.
func Dial(path string) (*Conn, error) { return nil, ErrUnsupported }
