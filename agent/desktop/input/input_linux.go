package input

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"

	"github.com/deskside/deskside/agent/desktop/internal/xconn"
)

// Attribute keys of the log records.
const (
	logKeyDisplay = "display"
	logKeyError   = "error"
	logKeyKeysym  = "keysym"
	logKeyKeycode = "keycode"
)

// maxCodeInError caps how much of an unknown code an error repeats.
const maxCodeInError = 32

var _ Injector = (*x11Injector)(nil)

// x11Injector injects through XTEST.
type x11Injector struct {
	logger *slog.Logger
	conn   *xconn.Conn
	x      *xgb.Conn
	root   xproto.Window
	minKC  xproto.Keycode
	maxKC  xproto.Keycode

	mu      sync.Mutex // guards everything below
	closed  bool
	keymap  *keymap                          // nil when stale
	spare   map[xproto.Keysym]xproto.Keycode // keysyms we bound to spare keycodes
	keys    []heldKey                        // keys held down, in press order
	buttons []int                            // buttons held down, in press order
}

type heldKey struct {
	code    string
	keycode xproto.Keycode
}

// keymap is the server's keyboard mapping.
type keymap struct {
	per   int                              // keysyms per keycode
	syms  []xproto.Keysym                  // per keysyms for each keycode from minKC
	index map[xproto.Keysym]xproto.Keycode // first keycode for each keysym, by column
}

// Open connects to an X display for injecting input. An empty display
// means $DISPLAY (see capture.Open for the Wayland rules). A nil logger
// discards.
func Open(display string, logger *slog.Logger) (_ Injector, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conn, err := xconn.Dial(display, logger)
	if err != nil {
		return nil, err // ErrWaylandNotSupported or wrapping ErrNoDisplay
	}
	in := &x11Injector{
		logger: logger,
		conn:   conn,
		x:      conn.X,
		root:   conn.Root,
		minKC:  conn.Setup.MinKeycode,
		maxKC:  conn.Setup.MaxKeycode,
		spare:  map[xproto.Keysym]xproto.Keycode{},
	}
	defer func() {
		if err != nil {
			in.conn.Close()
		}
	}()
	if !conn.Has(xconn.ExtXTest) {
		return nil, fmt.Errorf("%w: X server %s has no XTEST extension", ErrNotSupported, conn.Display)
	}
	if _, err := xtest.GetVersion(in.x, 2, 2).Reply(); err != nil {
		return nil, fmt.Errorf("input: XTEST version: %w", err)
	}
	if _, err := in.mapping(); err != nil {
		return nil, err
	}
	logger.Info("input: X11 injection ready", logKeyDisplay, conn.Display)
	return in, nil
}

// fake sends one XTEST event and waits until the server has taken it.
func (in *x11Injector) fake(typ byte, detail byte, x, y int16) error {
	err := xtest.FakeInputChecked(in.x, typ, detail, 0, in.root, x, y, 0).Check()
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %v", ErrDisplayClosed, err)
	}
	return fmt.Errorf("input: XTEST: %w", err)
}

// begin locks the Injector and handles the events xgb has read (keyboard
// MappingNotify makes the cached mapping stale).
func (in *x11Injector) begin() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return ErrClosed
	}
	for {
		ev, xerr := in.x.PollForEvent()
		if xerr != nil {
			in.logger.Debug("input: X error", logKeyError, xerr)
			continue
		}
		if ev == nil {
			return nil
		}
		if m, ok := ev.(xproto.MappingNotifyEvent); ok && m.Request == xproto.MappingKeyboard {
			in.keymap = nil
		}
	}
}

// MouseMove moves the pointer to (x, y) on the root window.
func (in *x11Injector) MouseMove(x, y int) error {
	if err := in.begin(); err != nil {
		return err
	}
	defer in.mu.Unlock()
	return in.fake(xproto.MotionNotify, 0, clamp16(x), clamp16(y))
}

func clamp16(v int) int16 {
	return int16(min(max(v, -1<<15), 1<<15-1))
}

// MouseButton presses or releases a button.
func (in *x11Injector) MouseButton(button int, down bool) error {
	switch button {
	case ButtonLeft, ButtonMiddle, ButtonRight, ButtonBack, ButtonForward:
	default:
		return fmt.Errorf("%w: %d", ErrInvalidButton, button)
	}
	if err := in.begin(); err != nil {
		return err
	}
	defer in.mu.Unlock()
	if !down {
		in.buttons = slices.DeleteFunc(in.buttons, func(b int) bool { return b == button })
		return in.fake(xproto.ButtonRelease, byte(button), 0, 0)
	}
	if err := in.fake(xproto.ButtonPress, byte(button), 0, 0); err != nil {
		return err
	}
	if !slices.Contains(in.buttons, button) {
		in.buttons = append(in.buttons, button)
	}
	return nil
}

// Wheel clicks buttons 4 (up), 5 (down), 6 (left) and 7 (right).
func (in *x11Injector) Wheel(dx, dy int) error {
	if err := in.begin(); err != nil {
		return err
	}
	defer in.mu.Unlock()
	for _, axis := range [...]struct {
		n        int
		neg, pos byte
	}{{dy, 4, 5}, {dx, 6, 7}} {
		button := axis.pos
		n := axis.n
		if n < 0 {
			button, n = axis.neg, -n
		}
		for range min(n, MaxWheelClicks) {
			if err := in.fake(xproto.ButtonPress, button, 0, 0); err != nil {
				return err
			}
			if err := in.fake(xproto.ButtonRelease, button, 0, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// Key presses or releases the key for a KeyboardEvent.code.
func (in *x11Injector) Key(code string, down bool) error {
	ks, ok := codeKeysyms[code]
	if !ok {
		if len(code) > maxCodeInError {
			code = code[:maxCodeInError] + "…"
		}
		return fmt.Errorf("%w: %q", ErrUnknownKey, code)
	}
	if err := in.begin(); err != nil {
		return err
	}
	defer in.mu.Unlock()
	if !down {
		// Release the keycode that was pressed, even if the mapping
		// changed since.
		if i := slices.IndexFunc(in.keys, func(k heldKey) bool { return k.code == code }); i >= 0 {
			kc := in.keys[i].keycode
			in.keys = slices.Delete(in.keys, i, i+1)
			return in.fake(xproto.KeyRelease, byte(kc), 0, 0)
		}
	}
	kc, err := in.keycode(xproto.Keysym(ks))
	if err != nil {
		return fmt.Errorf("%w (code %s)", err, code)
	}
	if !down {
		return in.fake(xproto.KeyRelease, byte(kc), 0, 0)
	}
	if err := in.fake(xproto.KeyPress, byte(kc), 0, 0); err != nil {
		return err
	}
	if !slices.ContainsFunc(in.keys, func(k heldKey) bool { return k.code == code }) {
		in.keys = append(in.keys, heldKey{code, kc})
	}
	return nil
}

// ReleaseAll releases the held keys (last pressed first), then buttons.
func (in *x11Injector) ReleaseAll() error {
	if err := in.begin(); err != nil {
		return err
	}
	defer in.mu.Unlock()
	return in.releaseAll()
}

func (in *x11Injector) releaseAll() error {
	var errs []error
	for _, k := range slices.Backward(in.keys) {
		if err := in.fake(xproto.KeyRelease, byte(k.keycode), 0, 0); err != nil {
			errs = append(errs, err)
		}
	}
	in.keys = nil
	for _, b := range slices.Backward(in.buttons) {
		if err := in.fake(xproto.ButtonRelease, byte(b), 0, 0); err != nil {
			errs = append(errs, err)
		}
	}
	in.buttons = nil
	return errors.Join(errs...)
}

// keycode returns a keycode that carries ks, binding it to a spare
// keycode when no key does.
func (in *x11Injector) keycode(ks xproto.Keysym) (xproto.Keycode, error) {
	m, err := in.mapping()
	if err != nil {
		return 0, err
	}
	if kc, ok := m.index[ks]; ok {
		return kc, nil
	}
	return in.bindSpare(m, ks)
}

// mapping returns the keyboard mapping, reading it when stale.
func (in *x11Injector) mapping() (*keymap, error) {
	if in.keymap != nil {
		return in.keymap, nil
	}
	count := int(in.maxKC) - int(in.minKC) + 1
	reply, err := xproto.GetKeyboardMapping(in.x, in.minKC, byte(count)).Reply()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %v", ErrDisplayClosed, err)
		}
		return nil, fmt.Errorf("input: keyboard mapping: %w", err)
	}
	m := &keymap{per: int(reply.KeysymsPerKeycode), syms: reply.Keysyms, index: map[xproto.Keysym]xproto.Keycode{}}
	// Prefer the unshifted column, then the shifted one, and so on: the
	// key that carries a keysym without modifiers is the one it names.
	for col := range m.per {
		for i := 0; i < count && (i+1)*m.per <= len(m.syms); i++ {
			ks := m.syms[i*m.per+col]
			if ks == 0 {
				continue
			}
			if _, ok := m.index[ks]; !ok {
				m.index[ks] = in.minKC + xproto.Keycode(i)
			}
		}
	}
	in.keymap = m
	return m, nil
}

// bindSpare binds ks to a keycode that carries no keysym (the highest
// free one) and remembers it so Close can unbind it.
func (in *x11Injector) bindSpare(m *keymap, ks xproto.Keysym) (xproto.Keycode, error) {
	used := map[xproto.Keycode]bool{}
	for _, k := range in.keys {
		used[k.keycode] = true
	}
	for i := int(in.maxKC) - int(in.minKC); i >= 0; i-- {
		kc := in.minKC + xproto.Keycode(i)
		if (i+1)*m.per > len(m.syms) || used[kc] || slices.ContainsFunc(m.syms[i*m.per:(i+1)*m.per], func(s xproto.Keysym) bool { return s != 0 }) {
			continue
		}
		syms := make([]xproto.Keysym, m.per)
		syms[0] = ks
		if m.per > 1 {
			syms[1] = ks
		}
		if err := xproto.ChangeKeyboardMappingChecked(in.x, 1, kc, byte(m.per), syms).Check(); err != nil {
			return 0, fmt.Errorf("input: bind keysym %#x to keycode %d: %w", uint32(ks), kc, err)
		}
		copy(m.syms[i*m.per:], syms)
		m.index[ks] = kc
		in.spare[ks] = kc
		in.logger.Debug("input: bound keysym to a spare keycode", logKeyKeysym, uint32(ks), logKeyKeycode, int(kc))
		return kc, nil
	}
	return 0, fmt.Errorf("%w: keysym %#x", ErrKeyUnavailable, uint32(ks))
}

// Close releases held keys and buttons, unbinds spare keycodes and closes
// the connection.
func (in *x11Injector) Close() error {
	if err := in.begin(); err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	defer in.mu.Unlock()
	in.closed = true
	var errs []error
	if err := in.releaseAll(); err != nil && !errors.Is(err, ErrDisplayClosed) {
		errs = append(errs, err)
	}
	if len(in.spare) > 0 {
		per := 2
		if m, err := in.mapping(); err == nil {
			per = m.per
		}
		for _, kc := range in.spare {
			err := xproto.ChangeKeyboardMappingChecked(in.x, 1, kc, byte(per), make([]xproto.Keysym, per)).Check()
			if err != nil && !errors.Is(err, io.EOF) {
				errs = append(errs, fmt.Errorf("input: unbind keycode %d: %w", kc, err))
			}
		}
	}
	in.spare = nil
	in.conn.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("input: close: %w", err)
	}
	return nil
}
