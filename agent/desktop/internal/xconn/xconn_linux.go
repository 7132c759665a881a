package xconn

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// Extension names as the X server (and xgb's Extensions map) spells them.
const (
	ExtRandR  = "RANDR"
	ExtShm    = "MIT-SHM"
	ExtDamage = "DAMAGE"
	ExtXTest  = "XTEST"
	ExtXFixes = "XFIXES"
)

// Env is the part of the process environment that decides which display
// Dial uses.
type Env struct {
	Display        string // $DISPLAY
	WaylandDisplay string // $WAYLAND_DISPLAY
	SessionType    string // $XDG_SESSION_TYPE
}

// EnvFromOS reads Env from the process environment.
func EnvFromOS() Env {
	return Env{
		Display:        os.Getenv("DISPLAY"),
		WaylandDisplay: os.Getenv("WAYLAND_DISPLAY"),
		SessionType:    os.Getenv("XDG_SESSION_TYPE"),
	}
}

// Resolve picks the display to connect to. An explicit display is used as
// given. An empty one means env.Display, unless the session is a Wayland
// one (ErrWaylandNotSupported); with no display at all the error wraps
// ErrNoDisplay, or is ErrWaylandNotSupported when $WAYLAND_DISPLAY is set.
func Resolve(display string, env Env) (string, error) {
	if display != "" {
		return display, nil
	}
	if env.SessionType == "wayland" {
		return "", ErrWaylandNotSupported
	}
	if env.Display == "" {
		if env.WaylandDisplay != "" {
			return "", ErrWaylandNotSupported
		}
		return "", fmt.Errorf("%w: $DISPLAY is not set", ErrNoDisplay)
	}
	return env.Display, nil
}

// Conn is an X connection with the default screen's details and the
// extensions Dial found.
type Conn struct {
	// X is the xgb connection; its methods are safe for concurrent use.
	X *xgb.Conn
	// Display is the display string the connection was made to.
	Display string
	Setup   *xproto.SetupInfo
	Screen  *xproto.ScreenInfo
	Root    xproto.Window

	present   map[string]bool
	closeOnce sync.Once
}

// Has reports whether the server has extension name (one of the Ext
// constants) and it was initialised on this connection.
func (c *Conn) Has(name string) bool { return c.present[name] }

// Close closes the connection and waits until xgb's reader goroutine has
// delivered its last event, so the connection's goroutines are ending when
// Close returns. Events still queued are discarded. Close is idempotent.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.X.Close()
		for {
			// (nil, nil) once the event channel is closed (or after a read
			// error, which also ends the reader).
			if ev, xerr := c.X.WaitForEvent(); ev == nil && xerr == nil {
				return
			}
		}
	})
}

// extension is one X extension the desktop packages use, with xgb's Init.
type extension struct {
	name string
	init func(*xgb.Conn) error
}

var extensions = []extension{
	{ExtRandR, randr.Init},
	{ExtShm, shm.Init},
	{ExtDamage, damage.Init},
	{ExtXTest, xtest.Init},
	{ExtXFixes, xfixes.Init},
}

// numbers are an extension's first event and error numbers on a server:
// what xgb's Init writes into its global tables.
type numbers struct{ firstEvent, firstError byte }

var (
	// regMu serialises Dial: no new connection (and so no new reader
	// goroutine) exists while xgb's global tables are written.
	regMu sync.Mutex
	// registered is the layout xgb's global tables were last written for:
	// the numbers of each extension present. Guarded by regMu.
	registered map[string]numbers
)

// Dial connects to display (see Resolve; an empty display uses the session
// environment) and initialises the extensions the server has. A nil
// logger discards.
func Dial(display string, logger *slog.Logger) (*Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return dial(display, EnvFromOS(), logger)
}

func dial(display string, env Env, logger *slog.Logger) (_ *Conn, err error) {
	display, err = Resolve(display, env)
	if err != nil {
		return nil, err
	}

	regMu.Lock()
	defer regMu.Unlock()

	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		if env.WaylandDisplay != "" && display == env.Display {
			return nil, fmt.Errorf("%w (X display %q unreachable: %v)", ErrWaylandNotSupported, display, err)
		}
		return nil, fmt.Errorf("%w: %q: %v", ErrNoDisplay, display, err)
	}
	c := &Conn{X: x, Display: display, present: map[string]bool{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	c.Setup = xproto.Setup(x)
	if c.Setup == nil || len(c.Setup.Roots) == 0 {
		return nil, fmt.Errorf("display %q: no screens in the connection setup", display)
	}
	c.Screen = xproto.Setup(x).DefaultScreen(x)
	c.Root = c.Screen.Root

	layout := map[string]numbers{}
	opcodes := map[string]byte{}
	for _, ext := range extensions {
		reply, err := xproto.QueryExtension(x, uint16(len(ext.name)), ext.name).Reply()
		if err != nil {
			return nil, fmt.Errorf("display %q: query extension %s: %w", display, ext.name, err)
		}
		if !reply.Present {
			logger.Debug("X extension missing", "display", display, "extension", ext.name)
			continue
		}
		layout[ext.name] = numbers{reply.FirstEvent, reply.FirstError}
		opcodes[ext.name] = reply.MajorOpcode
		c.present[ext.name] = true
	}
	if maps.Equal(layout, registered) {
		x.ExtLock.Lock()
		maps.Copy(x.Extensions, opcodes)
		x.ExtLock.Unlock()
	} else {
		// Another layout: every present extension's numbers are written
		// again, so none keeps a slot that another now uses.
		for _, ext := range extensions {
			if !c.present[ext.name] {
				continue
			}
			if err := ext.init(x); err != nil {
				registered = nil // partly written
				return nil, fmt.Errorf("display %q: init extension %s: %w", display, ext.name, err)
			}
		}
		registered = layout
	}
	// A round trip: the reader goroutine hands this reply over after the
	// writes above, so its later table reads are ordered after them.
	if _, err := xproto.GetInputFocus(x).Reply(); err != nil {
		return nil, fmt.Errorf("display %q: %w", display, err)
	}
	return c, nil
}
