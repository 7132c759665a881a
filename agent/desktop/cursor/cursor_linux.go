package cursor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Attribute keys of the log records.
const (
	logKeyDisplay = "display"
	logKeyError   = "error"
)

var _ Tracker = (*x11Tracker)(nil)

// x11Tracker follows the pointer of an X display.
type x11Tracker struct {
	cfg       Config
	conn      *xconn.Conn
	x         *xgb.Conn
	root      xproto.Window
	cancel    context.CancelFunc
	done      chan struct{} // closed when the loop ends
	closeOnce sync.Once
}

// Open connects to the display and starts following the pointer; the
// first position and shape are reported right away.
func Open(cfg Config) (_ Tracker, err error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	conn, err := xconn.Dial(cfg.Display, cfg.Logger)
	if err != nil {
		return nil, err // ErrWaylandNotSupported or wrapping ErrNoDisplay
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	if !conn.Has(xconn.ExtXFixes) {
		return nil, fmt.Errorf("%w: X server %s has no XFIXES extension", ErrNotSupported, conn.Display)
	}
	v, err := xfixes.QueryVersion(conn.X, 5, 0).Reply()
	if err != nil {
		return nil, fmt.Errorf("cursor: XFIXES version: %w", err)
	}
	if v.MajorVersion < 2 {
		return nil, fmt.Errorf("%w: XFIXES %d.%d has no cursor images", ErrNotSupported, v.MajorVersion, v.MinorVersion)
	}
	if err := xfixes.SelectCursorInputChecked(conn.X, conn.Root, xfixes.CursorNotifyMaskDisplayCursor).Check(); err != nil {
		return nil, fmt.Errorf("cursor: select cursor events: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &x11Tracker{cfg: cfg, conn: conn, x: conn.X, root: conn.Root, cancel: cancel, done: make(chan struct{})}
	go t.loop(ctx)
	cfg.Logger.Debug("cursor: following the X pointer", logKeyDisplay, conn.Display)
	return t, nil
}

// Close stops the loop and closes the connection.
func (t *x11Tracker) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		<-t.done
		t.conn.Close()
	})
	return nil
}

// loop polls the pointer and fetches the image after each CursorNotify.
func (t *x11Tracker) loop(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	var last Position
	var serial uint32
	moved, shaped := false, false
	dirty := true // fetch the first image
	for {
		for {
			ev, xerr := t.x.PollForEvent()
			if ev == nil && xerr == nil {
				break
			}
			if xerr != nil {
				t.cfg.Logger.Debug("cursor: X error", logKeyError, xerr)
				continue
			}
			if _, ok := ev.(xfixes.CursorNotifyEvent); ok {
				dirty = true
			}
		}
		if dirty {
			img, err := xfixes.GetCursorImage(t.x).Reply()
			if err != nil {
				t.stopped(ctx, err)
				return
			}
			dirty = false
			if !shaped || img.CursorSerial != serial {
				shaped, serial = true, img.CursorSerial
				if s, err := EncodeARGB(int(img.Width), int(img.Height), int(img.Xhot), int(img.Yhot), img.CursorImage); err != nil {
					t.cfg.Logger.Debug("cursor: unusable cursor image", logKeyError, err)
				} else {
					s.Serial = img.CursorSerial
					t.cfg.OnShape(s)
				}
			}
		}
		p, err := xproto.QueryPointer(t.x, t.root).Reply()
		if err != nil {
			t.stopped(ctx, err)
			return
		}
		pos := Position{X: int(p.RootX), Y: int(p.RootY), OnScreen: p.SameScreen}
		if !moved || pos != last {
			moved, last = true, pos
			t.cfg.OnMove(pos)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stopped logs why the loop ends, unless it was closed.
func (t *x11Tracker) stopped(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, io.EOF) {
		t.cfg.Logger.Warn("cursor: display connection lost; no more pointer updates", logKeyDisplay, t.conn.Display, logKeyError, err)
		return
	}
	t.cfg.Logger.Warn("cursor: stopped following the pointer", logKeyDisplay, t.conn.Display, logKeyError, err)
}
