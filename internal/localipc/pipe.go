package localipc

import (
	"fmt"
	"hash/fnv"
	"net"
	"strings"
)

// The Windows named pipe's rules. They are platform-free so that Linux
// tests check them; localipc_windows.go applies them.

// PipeName is the named pipe the Windows service listens on.
const PipeName = `\\.\pipe\deskside-agent`

// SystemSID is LocalSystem's SID, the account the Windows service runs as.
const SystemSID = "S-1-5-18"

// Pipe access rights (winnt.h), for the security descriptor and the client.
const (
	fileReadData           = 0x0001
	fileWriteData          = 0x0002
	fileCreatePipeInstance = 0x0004 // FILE_APPEND_DATA on a pipe
	// pipeClientAccess is what an interactive user gets and what Dial asks
	// for: FILE_GENERIC_READ and FILE_WRITE_DATA, without
	// FILE_CREATE_PIPE_INSTANCE, so a user can talk to the service but
	// cannot add an instance of its own to the pipe and answer other
	// users' clients in the service's name.
	pipeClientAccess = 0x0012019B
)

// PipeSDDL is the pipe's security descriptor: owned by SYSTEM; SYSTEM and
// Administrators have full access; interactive users (the helper started
// in a user's session, the tray) may connect, read and write; network
// logons are denied (the pipe also rejects remote clients). Every local
// user who may connect is identified by SID when they do, and the service
// decides what each may do, as with the Unix socket's mode 0666 and
// SO_PEERCRED.
var PipeSDDL = fmt.Sprintf("O:SYG:SYD:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x%x;;;IU)", pipeClientAccess)

// SIDUID is the uid a Windows peer gets in Cred.UID: 0 for LocalSystem,
// so that RootOr(0) admits the service as it admits root on Linux, and for
// every other SID a 32-bit hash of it (never 0 nor ^0, which callers use
// for "nobody"). It is a key for maps and logs, not an identity: checks
// that decide who may do something compare Cred.SID (SIDIs).
func SIDUID(sid string) uint32 {
	if strings.EqualFold(sid, SystemSID) {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToUpper(sid)))
	switch u := h.Sum32(); u {
	case 0:
		return 1
	case ^uint32(0):
		return ^uint32(0) - 1
	default:
		return u
	}
}

// SIDIs admits exactly the peers whose user SID is sid (Windows).
func SIDIs(sid string) Check {
	return func(c Cred) error {
		if c.SID != "" && strings.EqualFold(c.SID, sid) {
			return nil
		}
		return fmt.Errorf("%w: %s; only SID %s may connect", ErrRefused, c, sid)
	}
}

// replayConn is a connection whose first bytes were read already (the
// Windows listener reads the first frame's length before it may ask for
// the client's identity): Read returns them first.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
