package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Attribute keys of the log records.
const (
	logKeyDisplay = "display"
	logKeyError   = "error"
	logKeyGrab    = "grab"
	logKeyChange  = "change"
	logKeyWidth   = "width"
	logKeyHeight  = "height"
	logKeyMonitor = "monitor"
)

// livenessInterval is how often an idle Capture checks that the X
// connection is still alive.
const livenessInterval = time.Second

var (
	_ Capturer = (*x11Capturer)(nil)
	_ Informer = (*x11Capturer)(nil)
	_ Notifier = (*x11Capturer)(nil)
)

// x11Capturer captures an X11 screen; see the package documentation.
type x11Capturer struct {
	logger *slog.Logger
	conn   *xconn.Conn
	x      *xgb.Conn
	root   xproto.Window

	mu     sync.Mutex // guards everything below
	closed bool
	info   Info

	monitorsAPI bool          // RandR 1.5 GetMonitors
	dmg         damage.Damage // 0 without DAMAGE
	lastContact time.Time     // last reply from the server
	lost        bool          // the event watcher saw the connection end

	// With DAMAGE, watch reads every event as it arrives and signals
	// changes; watchDone is closed when it returns.
	changes   chan struct{}
	watchDone chan struct{}

	screen   image.Rectangle // root window geometry
	selected int             // Monitor.ID or WholeScreen
	rect     image.Rectangle // captured area, root coordinates
	useShm   bool
	seg      *shmSegment     // nil without MIT-SHM
	damaged  image.Rectangle // damage reported since the last grab
	full     bool            // the next Capture grabs the whole area
	resized  bool            // the screen layout may have changed
	buf      []byte          // the image, rect-sized
	frame    Frame
}

// Open connects to an X display and prepares to capture its whole screen.
// An empty display means $DISPLAY; then a Wayland session
// (XDG_SESSION_TYPE=wayland, or $WAYLAND_DISPLAY set and no X display
// reachable) gives ErrWaylandNotSupported. An explicit display (":N") is
// used as given. A nil logger discards.
func Open(display string, logger *slog.Logger) (_ Capturer, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conn, err := xconn.Dial(display, logger)
	if err != nil {
		return nil, err // ErrWaylandNotSupported or wrapping ErrNoDisplay
	}
	c := &x11Capturer{
		logger:   logger,
		conn:     conn,
		x:        conn.X,
		root:     conn.Root,
		selected: WholeScreen,
		info:     Info{Backend: "x11", Display: conn.Display, Grab: GrabGetImage, Change: ChangeCompare},
		screen:   image.Rect(0, 0, int(conn.Screen.WidthInPixels), int(conn.Screen.HeightInPixels)),
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := checkFormat(conn); err != nil {
		return nil, err
	}

	if conn.Has(xconn.ExtRandR) {
		if v, err := randr.QueryVersion(c.x, 1, 5).Reply(); err == nil {
			c.monitorsAPI = v.MajorVersion > 1 || v.MinorVersion >= 5
			randr.SelectInput(c.x, c.root, randr.NotifyMaskScreenChange)
		}
	}

	if conn.Has(xconn.ExtDamage) {
		if err := c.createDamage(); err != nil {
			logger.Warn("capture: DAMAGE unusable; detecting changes by comparing each full grab with the last", logKeyDisplay, conn.Display, logKeyError, err)
		}
	} else {
		logger.Warn("capture: X server has no DAMAGE extension; detecting changes by comparing each full grab with the last", logKeyDisplay, conn.Display)
	}

	c.useShm = conn.Has(xconn.ExtShm)
	if c.useShm {
		if _, err := shm.QueryVersion(c.x).Reply(); err != nil {
			c.useShm = false
			logger.Warn("capture: MIT-SHM unusable; falling back to GetImage (slower)", logKeyDisplay, conn.Display, logKeyError, err)
		}
	} else {
		logger.Warn("capture: X server has no MIT-SHM extension; falling back to GetImage (slower)", logKeyDisplay, conn.Display)
	}
	c.setRect(c.screen)
	c.lastContact = time.Now()
	if c.dmg != 0 {
		c.changes, c.watchDone = make(chan struct{}, 1), make(chan struct{})
		go c.watch()
	}

	logger.Info("capture: X11 capture ready", logKeyDisplay, conn.Display, logKeyGrab, c.info.Grab, logKeyChange, c.info.Change,
		logKeyWidth, c.screen.Dx(), logKeyHeight, c.screen.Dy())
	return c, nil
}

// checkFormat makes sure the root window's pixels are 32-bit
// little-endian with 8-bit red, green and blue in the order BGRX.
func checkFormat(conn *xconn.Conn) error {
	scr, setup := conn.Screen, conn.Setup
	bpp := 0
	for _, f := range setup.PixmapFormats {
		if f.Depth == scr.RootDepth {
			bpp = int(f.BitsPerPixel)
		}
	}
	if bpp != 32 {
		return fmt.Errorf("%w: root depth %d uses %d bits per pixel, not 32", ErrNotSupported, scr.RootDepth, bpp)
	}
	if setup.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return fmt.Errorf("%w: X server image byte order is big-endian", ErrNotSupported)
	}
	for _, d := range scr.AllowedDepths {
		for _, v := range d.Visuals {
			if v.VisualId != scr.RootVisual {
				continue
			}
			if v.RedMask != 0xff0000 || v.GreenMask != 0xff00 || v.BlueMask != 0xff {
				return fmt.Errorf("%w: root visual masks %#x/%#x/%#x are not 8-bit RGB", ErrNotSupported, v.RedMask, v.GreenMask, v.BlueMask)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: root visual not found", ErrNotSupported)
}

// createDamage creates the damage object on the root window.
func (c *x11Capturer) createDamage() error {
	if _, err := damage.QueryVersion(c.x, 1, 1).Reply(); err != nil {
		return err
	}
	id, err := damage.NewDamageId(c.x)
	if err != nil {
		return err
	}
	if err := damage.CreateChecked(c.x, id, xproto.Drawable(c.root), damage.ReportLevelBoundingBox).Check(); err != nil {
		return err
	}
	c.dmg = id
	c.info.Change = ChangeDamage
	return nil
}

// Info describes the capture path.
func (c *x11Capturer) Info() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Monitors lists the monitors through RandR 1.5, or the whole screen as
// one monitor.
func (c *x11Capturer) Monitors() ([]Monitor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	return c.monitors()
}

func (c *x11Capturer) monitors() ([]Monitor, error) {
	if c.monitorsAPI {
		reply, err := randr.GetMonitors(c.x, c.root, true).Reply()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %v", ErrDisplayClosed, err)
			}
			c.logger.Debug("capture: RandR GetMonitors failed; using the screen", logKeyError, err)
		} else if len(reply.Monitors) > 0 {
			c.lastContact = time.Now()
			out := make([]Monitor, 0, len(reply.Monitors))
			primary := false
			for i, m := range reply.Monitors {
				name := fmt.Sprintf("monitor-%d", i)
				if a, err := xproto.GetAtomName(c.x, m.Name).Reply(); err == nil && a.Name != "" {
					name = a.Name
				}
				out = append(out, Monitor{ID: i, Name: name, X: int(m.X), Y: int(m.Y),
					Width: int(m.Width), Height: int(m.Height), Primary: m.Primary})
				primary = primary || m.Primary
			}
			if !primary {
				out[0].Primary = true
			}
			return out, nil
		}
	}
	return []Monitor{{ID: 0, Name: "screen", Width: c.screen.Dx(), Height: c.screen.Dy(), Primary: true}}, nil
}

// Select chooses the monitor to capture.
func (c *x11Capturer) Select(id int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	r, err := c.resolve(id)
	if err != nil {
		return err
	}
	c.selected = id
	c.setRect(r)
	return nil
}

// resolve returns the area of monitor id (or of the whole screen).
func (c *x11Capturer) resolve(id int) (image.Rectangle, error) {
	if id == WholeScreen {
		return c.screen, nil
	}
	mons, err := c.monitors()
	if err != nil {
		return image.Rectangle{}, err
	}
	for _, m := range mons {
		if m.ID == id {
			r := image.Rect(m.X, m.Y, m.X+m.Width, m.Y+m.Height).Intersect(c.screen)
			if r.Empty() {
				return image.Rectangle{}, fmt.Errorf("%w: monitor %d (%s) lies outside the screen", ErrNoSuchMonitor, id, m.Name)
			}
			return r, nil
		}
	}
	return image.Rectangle{}, fmt.Errorf("%w: %d (the display has %d)", ErrNoSuchMonitor, id, len(mons))
}

// setRect makes r the captured area: a new frame buffer and, with MIT-SHM,
// a new segment of its size (the old one is detached and removed). The
// next Capture grabs all of it.
func (c *x11Capturer) setRect(r image.Rectangle) {
	c.rect = r
	stride := r.Dx() * 4
	size := stride * r.Dy()
	if cap(c.buf) >= size && cap(c.buf) <= 2*size {
		c.buf = c.buf[:size]
	} else {
		c.buf = make([]byte, size)
	}
	c.frame = Frame{Width: r.Dx(), Height: r.Dy(), Stride: stride, X: r.Min.X, Y: r.Min.Y, Monitor: c.selected,
		Pix: c.buf, Seq: c.frame.Seq}
	c.full = true

	if c.seg != nil {
		if err := c.seg.close(); err != nil {
			c.logger.Warn("capture: releasing shared memory", logKeyError, err)
		}
		c.seg = nil
	}
	if !c.useShm {
		return
	}
	seg, err := newShmSegment(c.x, size)
	if err != nil {
		c.useShm = false
		c.info.Grab = GrabGetImage
		c.logger.Warn("capture: MIT-SHM unavailable; falling back to GetImage (slower)", logKeyDisplay, c.conn.Display, logKeyError, err)
		return
	}
	c.seg = seg
	c.info.Grab = GrabSHM
}

// Capture grabs what changed since the last call; see the package
// documentation.
func (c *x11Capturer) Capture() (*Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.lost {
		return nil, fmt.Errorf("%w: the X server closed the connection", ErrDisplayClosed)
	}
	if c.changes == nil {
		c.pollEvents() // no watcher: drain what xgb has read
	}
	if c.resized {
		c.resized = false
		if err := c.relayout(); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	c.frame.Time = now
	c.frame.Changed = false

	y0, y1, grab := c.dirtyRows()
	if !grab {
		if now.Sub(c.lastContact) >= livenessInterval {
			if _, err := xproto.GetInputFocus(c.x).Reply(); err != nil {
				return nil, c.connErr("liveness check", err)
			}
			c.lastContact = now
		}
		return &c.frame, nil
	}
	data, err := c.fetch(y0, y1)
	if err != nil {
		c.full = true // try again in full next time
		return nil, c.connErr("grab", err)
	}
	c.lastContact = now
	dst := c.buf[y0*c.frame.Stride:]
	if c.dmg == 0 && !c.full && bytes.Equal(data, dst[:len(data)]) {
		return &c.frame, nil // compare mode: the same image again
	}
	copy(dst, data)
	c.full = false
	c.frame.Changed = true
	c.frame.Seq++
	return &c.frame, nil
}

// connErr wraps err, marking a lost connection with ErrDisplayClosed.
func (c *x11Capturer) connErr(what string, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %v", ErrDisplayClosed, what, err)
	}
	return fmt.Errorf("capture: %s: %w", what, err)
}

// Changes implements Notifier: with DAMAGE it signals drawing as the
// server reports it; without, it is nil (poll).
func (c *x11Capturer) Changes() <-chan struct{} { return c.changes }

// watch reads the connection's events as they arrive (DAMAGE, RandR) and
// signals changes, until the connection ends.
func (c *x11Capturer) watch() {
	defer close(c.watchDone)
	for {
		ev, xerr := c.x.WaitForEvent()
		if ev == nil && xerr == nil {
			// Closed by Close, or lost: Capture reports the latter.
			c.mu.Lock()
			c.lost = !c.closed
			c.mu.Unlock()
			c.signal()
			return
		}
		if xerr != nil {
			c.logger.Debug("capture: X error", logKeyError, xerr)
			continue
		}
		c.mu.Lock()
		changed := c.event(ev)
		c.mu.Unlock()
		if changed {
			c.signal()
		}
	}
}

func (c *x11Capturer) signal() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// pollEvents drains the events xgb has already read, without waiting
// (when no watcher reads them).
func (c *x11Capturer) pollEvents() {
	for {
		ev, xerr := c.x.PollForEvent()
		if xerr != nil {
			c.logger.Debug("capture: X error", logKeyError, xerr)
			continue
		}
		if ev == nil {
			return
		}
		c.event(ev)
	}
}

// event records a DAMAGE or RandR event; it reports whether the screen
// may have changed. c.mu is held.
func (c *x11Capturer) event(ev xgb.Event) bool {
	switch e := ev.(type) {
	case damage.NotifyEvent:
		a := image.Rect(int(e.Area.X), int(e.Area.Y), int(e.Area.X)+int(e.Area.Width), int(e.Area.Y)+int(e.Area.Height))
		c.damaged = c.damaged.Union(a)
		if int(e.Geometry.Width) != c.screen.Dx() || int(e.Geometry.Height) != c.screen.Dy() {
			c.resized = true
		}
		return true
	case randr.ScreenChangeNotifyEvent:
		c.resized = true
		return true
	}
	return false
}

// dirtyRows returns the rows [y0, y1) of the captured area to grab, and
// false when nothing needs grabbing. With DAMAGE it subtracts the damage
// on the server first, so drawing during the grab raises a new event.
func (c *x11Capturer) dirtyRows() (y0, y1 int, grab bool) {
	h := c.rect.Dy()
	if c.dmg == 0 {
		return 0, h, true // compare mode: grab and compare
	}
	if c.full {
		c.subtractDamage()
		return 0, h, true
	}
	if c.damaged.Empty() {
		return 0, 0, false
	}
	d := c.damaged.Intersect(c.rect)
	c.subtractDamage()
	if d.Empty() {
		return 0, 0, false // damage on another monitor
	}
	return d.Min.Y - c.rect.Min.Y, d.Max.Y - c.rect.Min.Y, true
}

func (c *x11Capturer) subtractDamage() {
	damage.Subtract(c.x, c.dmg, 0, 0) // no reply; ordered before the grab
	c.damaged = image.Rectangle{}
}

// fetch has the server copy rows [y0, y1) of the captured area and
// returns them packed at Stride bytes per row. With MIT-SHM the data is
// the shared segment at the rows' offset (valid until the next fetch).
func (c *x11Capturer) fetch(y0, y1 int) ([]byte, error) {
	stride := c.frame.Stride
	w, h := c.rect.Dx(), y1-y0
	x, y := c.rect.Min.X, c.rect.Min.Y+y0
	n := h * stride
	if c.seg != nil {
		off := y0 * stride
		_, err := shm.GetImage(c.x, xproto.Drawable(c.root), int16(x), int16(y), uint16(w), uint16(h),
			0xffffffff, xproto.ImageFormatZPixmap, c.seg.seg, uint32(off)).Reply()
		if err != nil {
			return nil, err
		}
		return c.seg.data[off : off+n], nil
	}
	reply, err := xproto.GetImage(c.x, xproto.ImageFormatZPixmap, xproto.Drawable(c.root), int16(x), int16(y),
		uint16(w), uint16(h), 0xffffffff).Reply()
	if err != nil {
		return nil, err
	}
	if len(reply.Data) < n {
		return nil, fmt.Errorf("GetImage returned %d bytes for %d×%d", len(reply.Data), w, h)
	}
	return reply.Data[:n], nil
}

// relayout re-reads the screen size after a RandR change and re-resolves
// the selection; a monitor that is gone falls back to the whole screen.
func (c *x11Capturer) relayout() error {
	geo, err := xproto.GetGeometry(c.x, xproto.Drawable(c.root)).Reply()
	if err != nil {
		return c.connErr("screen geometry", err)
	}
	c.screen = image.Rect(0, 0, int(geo.Width), int(geo.Height))
	r, err := c.resolve(c.selected)
	if errors.Is(err, ErrNoSuchMonitor) {
		c.logger.Warn("capture: selected monitor is gone; capturing the whole screen", logKeyMonitor, c.selected, logKeyError, err)
		c.selected = WholeScreen
		r, err = c.screen, nil
	}
	if err != nil {
		return err
	}
	if r != c.rect {
		c.logger.Info("capture: screen layout changed", logKeyWidth, r.Dx(), logKeyHeight, r.Dy())
		c.setRect(r)
	}
	c.frame.Monitor = c.selected
	return nil
}

// Close releases the damage object, the shared memory and the connection,
// and waits for the event watcher to end.
func (c *x11Capturer) Close() error {
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		if c.watchDone != nil {
			<-c.watchDone // it needs c.mu for a last event, so after Unlock
		}
	}()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.dmg != 0 {
		damage.Destroy(c.x, c.dmg)
	}
	if c.seg != nil {
		err = c.seg.close()
		c.seg = nil
	}
	c.conn.Close()
	c.buf, c.frame.Pix = nil, nil
	if err != nil {
		return fmt.Errorf("capture: close: %w", err)
	}
	return nil
}
