// Package localipc is the agent's local IPC: length-prefixed protobuf
// frames (a 4-byte big-endian length, then the message) over a Unix
// socket, between the agent service and the processes of the users'
// sessions on the same machine (the desktop helper it launches as the
// logged-in user; the tray). The listener reads each connection's
// peer credentials (SO_PEERCRED) before a frame is read, and a Check
// decides who may talk to the service: root, or the uid expected.
//
// On Windows the same frames travel over a named pipe (PipeName) whose
// security descriptor (PipeSDDL) gives SYSTEM and Administrators full
// access and interactive users only the right to connect; the peer is the
// pipe client's user SID, read by impersonating the client (Cred.SID).
// Listen and Dial return ErrUnsupported on macOS.
package localipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"google.golang.org/protobuf/proto"
)

// MaxFrame is the default cap on one frame's size: SDP offers and ICE
// candidates are a few KiB; nothing larger travels here.
const MaxFrame = 1 << 20

// Errors.
var (
	// ErrFrameTooLarge is a frame over the cap, sent or received; the
	// connection is not usable after one is received.
	ErrFrameTooLarge = errors.New("localipc: frame too large")
	// ErrRefused is a peer the Check refused.
	ErrRefused = errors.New("localipc: peer refused")
	// ErrUnsupported is local IPC on a platform that does not have it yet.
	ErrUnsupported = errors.New("localipc: local IPC is not built for this platform yet (Linux and Windows only)")
)

// Cred is a peer's credentials as the kernel reports them.
//
// On Windows SID is the peer's user SID ("S-1-5-21-…"), UID is SIDUID(SID)
// (0 for LocalSystem, so RootOr(0) admits the service) and GID is 0;
// compare SIDs, not UIDs, where the identity decides (SIDIs). On Linux
// SID is "".
type Cred struct {
	PID int32
	UID uint32
	GID uint32
	SID string
}

func (c Cred) String() string {
	if c.SID != "" {
		return fmt.Sprintf("SID %s (pid %d)", c.SID, c.PID)
	}
	return fmt.Sprintf("uid %d (pid %d)", c.UID, c.PID)
}

// Check decides whether a peer may use the socket; a refusal should wrap
// ErrRefused.
type Check func(Cred) error

// RootOr lets root and uid in; every other peer is refused.
func RootOr(uid uint32) Check {
	return func(c Cred) error {
		if c.UID == 0 || c.UID == uid {
			return nil
		}
		return fmt.Errorf("%w: %s; only root or uid %d may connect", ErrRefused, c, uid)
	}
}

// Conn is one connection: frames in, frames out, and who is at the other
// end. Send is safe for concurrent use; Recv is for one reader.
type Conn struct {
	c    net.Conn
	peer Cred
	max  int

	wmu  sync.Mutex
	rbuf []byte
}

// NewConn wraps c (a connection whose peer is known, or a test pipe);
// max caps frames both ways (0: MaxFrame).
func NewConn(c net.Conn, peer Cred, max int) *Conn {
	if max <= 0 {
		max = MaxFrame
	}
	return &Conn{c: c, peer: peer, max: max}
}

// SetMaxFrame changes the cap on this connection's frames both ways
// (0: MaxFrame); call it before Send and Recv run.
func (c *Conn) SetMaxFrame(n int) {
	if n <= 0 {
		n = MaxFrame
	}
	c.max = n
}

// Peer is the other end's credentials.
func (c *Conn) Peer() Cred { return c.peer }

// Close closes the connection; a blocked Recv returns.
func (c *Conn) Close() error { return c.c.Close() }

// Send writes m as one frame.
func (c *Conn) Send(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("localipc: encode %T: %w", m, err)
	}
	if len(b) > c.max {
		return fmt.Errorf("%w: sending %T of %d bytes (at most %d)", ErrFrameTooLarge, m, len(b), c.max)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	frame = append(frame, b...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.c.Write(frame); err != nil {
		return fmt.Errorf("localipc: send to %s: %w", c.peer, err)
	}
	return nil
}

// Recv reads the next frame into m. io.EOF is the peer closing between
// frames; a frame over the cap is ErrFrameTooLarge and is not read.
func (c *Conn) Recv(m proto.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("localipc: receive from %s: %w", c.peer, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(c.max) {
		return fmt.Errorf("%w: %s announced %d bytes (at most %d)", ErrFrameTooLarge, c.peer, n, c.max)
	}
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.c, buf); err != nil {
		return fmt.Errorf("localipc: receive from %s: frame cut short: %w", c.peer, err)
	}
	if err := proto.Unmarshal(buf, m); err != nil {
		return fmt.Errorf("localipc: decode %T from %s: %w", m, c.peer, err)
	}
	return nil
}
