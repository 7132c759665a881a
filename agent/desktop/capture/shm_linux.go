package capture

import (
	"errors"
	"fmt"
	"io"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/shm"
	"golang.org/x/sys/unix"
)

// shmSegment is a System V shared-memory segment attached by this process
// and by the X server.
type shmSegment struct {
	x    *xgb.Conn
	id   int     // System V id
	seg  shm.Seg // the server's name for it
	data []byte  // our mapping
}

// newShmSegment creates a segment of size bytes and has the server attach
// it read-write (it writes images into it). Once the server has attached
// it, the segment is marked for removal: it lives while either side has
// it attached and vanishes with the last detach, even after a crash.
func newShmSegment(x *xgb.Conn, size int) (_ *shmSegment, err error) {
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		return nil, fmt.Errorf("shmget %d bytes: %w", size, err)
	}
	defer func() {
		// Mark for removal in every case; with err == nil the segment
		// stays until both sides detach.
		if _, rmErr := unix.SysvShmCtl(id, unix.IPC_RMID, nil); rmErr != nil && err == nil {
			err = fmt.Errorf("shmctl IPC_RMID: %w", rmErr)
		}
	}()
	data, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shmat: %w", err)
	}
	s := &shmSegment{x: x, id: id, data: data}
	if s.seg, err = shm.NewSegId(x); err != nil {
		_ = unix.SysvShmDetach(data)
		return nil, err
	}
	if err = shm.AttachChecked(x, s.seg, uint32(id), false).Check(); err != nil {
		_ = unix.SysvShmDetach(data)
		return nil, fmt.Errorf("the X server could not attach the segment: %w", err)
	}
	return s, nil
}

// close detaches the segment on the server (waiting for it) and here.
// A lost connection is not an error: the server detached with it.
func (s *shmSegment) close() error {
	var errs []error
	if err := shm.DetachChecked(s.x, s.seg).Check(); err != nil && !errors.Is(err, io.EOF) {
		errs = append(errs, fmt.Errorf("server-side detach: %w", err))
	}
	if err := unix.SysvShmDetach(s.data); err != nil {
		errs = append(errs, fmt.Errorf("shmdt: %w", err))
	}
	s.data = nil
	return errors.Join(errs...)
}
