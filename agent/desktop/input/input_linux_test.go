package input

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"

	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/xconn"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
)

const waitTimeout = 10 * time.Second

// Keysyms the tests look for.
const (
	xkShiftL = 0xffe1
	xkReturn = 0xff0d
	xkF13    = 0xffca
)

// setup starts an Xvfb, the test client and an Injector, all stopped when
// t ends.
func setup(t *testing.T) (*xvfb.Server, *testclient.Client, Injector) {
	t.Helper()
	s := xvfb.Start(t)
	cl, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	in, err := Open(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return s, cl, in
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMouse(t *testing.T) {
	_, cl, in := setup(t)
	for _, tt := range []struct {
		name   string
		x, y   int
		button int
	}{
		{"left click", 300, 200, ButtonLeft},
		{"middle click", 1000, 700, ButtonMiddle},
		{"right click", 1919, 1079, ButtonRight},
		{"back", 5, 5, ButtonBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl.ResetEvents()
			must(t, in.MouseMove(tt.x, tt.y))
			must(t, in.MouseButton(tt.button, true))
			must(t, in.MouseButton(tt.button, false))
			if err := cl.WaitFor(func(evs []testclient.Event) bool {
				return testclient.HasButton(evs, testclient.ButtonPress, tt.button, tt.x, tt.y) &&
					testclient.HasButton(evs, testclient.ButtonRelease, tt.button, tt.x, tt.y)
			}, waitTimeout); err != nil {
				t.Fatal(err)
			}
			if evs := cl.Events(); evs[0].Kind != testclient.Motion || evs[0].X != tt.x || evs[0].Y != tt.y {
				t.Errorf("first event %v, want motion to (%d,%d)", evs[0], tt.x, tt.y)
			}
		})
	}

	t.Run("out of range is clamped by the server", func(t *testing.T) {
		cl.ResetEvents()
		must(t, in.MouseMove(5000, -70000))
		must(t, in.MouseButton(ButtonLeft, true))
		must(t, in.MouseButton(ButtonLeft, false))
		if err := cl.WaitFor(func(evs []testclient.Event) bool {
			return testclient.HasButton(evs, testclient.ButtonRelease, 1, 1919, 0)
		}, waitTimeout); err != nil {
			t.Fatal(err)
		}
	})

	for _, b := range []int{0, 4, 5, 6, 7, 10, -1} {
		if err := in.MouseButton(b, true); !errors.Is(err, ErrInvalidButton) {
			t.Errorf("MouseButton(%d) = %v, want ErrInvalidButton", b, err)
		}
	}
}

func TestWheel(t *testing.T) {
	_, cl, in := setup(t)
	must(t, in.MouseMove(100, 100))
	for _, tt := range []struct {
		name   string
		dx, dy int
		want   map[int]int // button → clicks
	}{
		{"down", 0, 3, map[int]int{5: 3}},
		{"up", 0, -2, map[int]int{4: 2}},
		{"left and right", -1, 0, map[int]int{6: 1}},
		{"both axes", 2, 1, map[int]int{7: 2, 5: 1}},
		{"capped", 0, 1000, map[int]int{5: MaxWheelClicks}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl.ResetEvents()
			must(t, in.Wheel(tt.dx, tt.dy))
			total := 0
			for _, n := range tt.want {
				total += n
			}
			if err := cl.WaitFor(func(evs []testclient.Event) bool {
				n := 0
				for _, e := range evs {
					if e.Kind == testclient.ButtonRelease {
						n++
					}
				}
				return n >= total
			}, waitTimeout); err != nil {
				t.Fatal(err)
			}
			got := map[int]int{}
			for _, e := range cl.Events() {
				if e.Kind == testclient.ButtonPress {
					got[e.Button]++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("wheel presses = %v, want %v", got, tt.want)
			}
		})
	}
}

// usKeys maps the characters of the typing test to a code and whether
// Shift is needed, on a US layout.
var usKeys = func() map[rune]struct {
	code  string
	shift bool
} {
	m := map[rune]struct {
		code  string
		shift bool
	}{
		' ': {"Space", false}, ',': {"Comma", false}, '.': {"Period", false},
		'!': {"Digit1", true}, '@': {"Digit2", true}, '?': {"Slash", true},
		'-': {"Minus", false}, '_': {"Minus", true}, ';': {"Semicolon", false},
		':': {"Semicolon", true}, '\'': {"Quote", false}, '"': {"Quote", true},
	}
	for c := 'a'; c <= 'z'; c++ {
		code := "Key" + strings.ToUpper(string(c))
		m[c] = struct {
			code  string
			shift bool
		}{code, false}
		m[c-'a'+'A'] = struct {
			code  string
			shift bool
		}{code, true}
	}
	for c := '0'; c <= '9'; c++ {
		m[c] = struct {
			code  string
			shift bool
		}{"Digit" + string(c), false}
	}
	return m
}()

// typeText types s as a browser would report it: ShiftLeft down and up
// around shifted characters.
func typeText(t *testing.T, in Injector, s string) {
	t.Helper()
	for _, r := range s {
		k, ok := usKeys[r]
		if !ok {
			t.Fatalf("no key for %q", r)
		}
		if k.shift {
			must(t, in.Key("ShiftLeft", true))
		}
		must(t, in.Key(k.code, true))
		must(t, in.Key(k.code, false))
		if k.shift {
			must(t, in.Key("ShiftLeft", false))
		}
	}
}

func TestTypeText(t *testing.T) {
	_, cl, in := setup(t)
	for _, text := range []string{"Hello, World!", "it's 42: \"quoted\"_-?@"} {
		t.Run(text, func(t *testing.T) {
			cl.ResetEvents()
			typeText(t, in, text)
			if err := cl.WaitFor(func(evs []testclient.Event) bool { return testclient.Text(evs) == text }, waitTimeout); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	_, cl, in := setup(t)
	for _, tt := range []struct {
		code string
		want uint32 // keysym the client sees
	}{
		{"KeyA", 'a'},
		{"Digit0", '0'},
		{"Enter", xkReturn},
		{"Tab", 0xff09},
		{"Escape", 0xff1b},
		{"Backspace", 0xff08},
		{"Delete", 0xffff},
		{"ArrowLeft", 0xff51},
		{"PageDown", 0xff56},
		{"F5", 0xffc2},
		{"F12", 0xffc9},
		{"F13", xkF13}, // on no key of the default keymap: bound to a spare keycode
		{"F24", 0xffd5},
		{"ControlRight", 0xffe4},
		{"AltLeft", 0xffe9},
		{"MetaLeft", 0xffeb},
		{"NumpadAdd", 0xffab},
		{"NumpadEnter", 0xff8d},
		{"Backquote", '`'},
		{"IntlBackslash", '<'},
		{"Space", ' '},
	} {
		t.Run(tt.code, func(t *testing.T) {
			cl.ResetEvents()
			must(t, in.Key(tt.code, true))
			must(t, in.Key(tt.code, false))
			if err := cl.WaitFor(func(evs []testclient.Event) bool {
				return testclient.HasKey(evs, testclient.KeyPress, tt.want) && testclient.HasKey(evs, testclient.KeyRelease, tt.want)
			}, waitTimeout); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("unknown codes", func(t *testing.T) {
		for _, code := range []string{"", "Unidentified", "keya", "F25", strings.Repeat("X", 1000)} {
			err := in.Key(code, true)
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Key(%.10q) = %v, want ErrUnknownKey", code, err)
			}
			if err != nil && len(err.Error()) > 100 {
				t.Errorf("error for a long code is %d bytes long", len(err.Error()))
			}
		}
	})
}

func TestReleaseAll(t *testing.T) {
	_, cl, in := setup(t)
	must(t, in.MouseMove(50, 60))
	must(t, in.Key("ShiftLeft", true))
	must(t, in.Key("KeyQ", true))
	must(t, in.MouseButton(ButtonRight, true))
	if err := cl.WaitFor(func(evs []testclient.Event) bool {
		return testclient.HasKey(evs, testclient.KeyPress, xkShiftL) && testclient.HasKey(evs, testclient.KeyPress, 'Q') &&
			testclient.HasButton(evs, testclient.ButtonPress, 3, 50, 60)
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	cl.ResetEvents()
	must(t, in.ReleaseAll())
	if err := cl.WaitFor(func(evs []testclient.Event) bool {
		return testclient.HasKey(evs, testclient.KeyRelease, xkShiftL) && testclient.HasButton(evs, testclient.ButtonRelease, 3, 50, 60) &&
			len(evs) == 3
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	// Last pressed first: Q (seen as "Q": Shift still down), then Shift.
	if evs := cl.Events(); evs[0].Keysym != 'Q' || evs[1].Keysym != xkShiftL {
		t.Errorf("release order %v, want Q then Shift_L", evs)
	}

	// Nothing is held any more: typing gives lower case.
	cl.ResetEvents()
	must(t, in.ReleaseAll())
	typeText(t, in, "ok")
	// Wait for the last release too, so the count below sees every event.
	if err := cl.WaitFor(func(evs []testclient.Event) bool {
		return testclient.Text(evs) == "ok" && testclient.HasKey(evs, testclient.KeyRelease, 'k')
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	if evs := cl.Events(); len(evs) != 4 {
		t.Errorf("second ReleaseAll sent events: %v", evs)
	}
}

// keysymsOf reads the keysyms of keycode kc from the server.
func keysymsOf(t *testing.T, display string, kc xproto.Keycode) []xproto.Keysym {
	t.Helper()
	conn, err := xconn.Dial(display, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply, err := xproto.GetKeyboardMapping(conn.X, kc, 1).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return reply.Keysyms
}

func TestCloseFreesEverything(t *testing.T) {
	s := xvfb.Start(t)
	cl, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	testkit.CheckGoroutines(t)

	in, err := Open(s.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, in.Key("F13", true)) // binds a spare keycode, and stays held
	if err := cl.WaitFor(func(evs []testclient.Event) bool {
		return testclient.HasKey(evs, testclient.KeyPress, xkF13)
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	spare := xproto.Keycode(cl.Events()[0].Keycode)
	if got := keysymsOf(t, s.Display, spare); got[0] != xkF13 {
		t.Fatalf("keycode %d carries %v, want F13", spare, got)
	}

	must(t, in.Close())
	must(t, in.Close())
	// Close released the held key and unbound the spare keycode.
	if err := cl.WaitFor(func(evs []testclient.Event) bool {
		for _, e := range evs {
			if e.Kind == testclient.KeyRelease && e.Keycode == int(spare) {
				return true
			}
		}
		return false
	}, waitTimeout); err != nil {
		t.Fatal(err)
	}
	for _, ks := range keysymsOf(t, s.Display, spare) {
		if ks != 0 {
			t.Fatalf("keycode %d still carries keysyms after Close", spare)
		}
	}
	for name, call := range map[string]func() error{
		"MouseMove":   func() error { return in.MouseMove(1, 1) },
		"MouseButton": func() error { return in.MouseButton(1, true) },
		"Wheel":       func() error { return in.Wheel(0, 1) },
		"Key":         func() error { return in.Key("KeyA", true) },
		"ReleaseAll":  in.ReleaseAll,
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		display string
		env     map[string]string
		wantErr error
	}{
		{name: "Wayland only", env: map[string]string{"DISPLAY": "", "WAYLAND_DISPLAY": "wayland-0"}, wantErr: ErrWaylandNotSupported},
		{name: "Wayland session type", env: map[string]string{"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, wantErr: ErrWaylandNotSupported},
		{name: "no display", env: map[string]string{"DISPLAY": "", "WAYLAND_DISPLAY": ""}, wantErr: ErrNoDisplay},
		{name: "unreachable display", display: ":64999", wantErr: ErrNoDisplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_SESSION_TYPE", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			in, err := Open(tt.display, nil)
			if err == nil {
				in.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open(%q) error = %v, want %v", tt.display, err, tt.wantErr)
			}
		})
	}
}

func TestNoXTest(t *testing.T) {
	s := xvfb.StartWith(t, xvfb.Config{Args: []string{"-extension", "XTEST"}})
	in, err := Open(s.Display, nil)
	if err == nil {
		in.Close()
	}
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Open without XTEST = %v, want ErrNotSupported", err)
	}
}

func TestCodeTable(t *testing.T) {
	for _, code := range []string{"KeyA", "KeyZ", "Digit0", "Digit9", "F1", "F24", "Numpad0", "Numpad9",
		"ShiftLeft", "ShiftRight", "ControlLeft", "ControlRight", "AltLeft", "AltRight", "MetaLeft", "MetaRight",
		"Enter", "Tab", "Escape", "Backspace", "Delete", "Space", "CapsLock", "ArrowLeft", "ArrowUp", "ArrowRight",
		"ArrowDown", "Home", "End", "PageUp", "PageDown", "Insert", "Minus", "Equal", "BracketLeft", "BracketRight",
		"Backslash", "Semicolon", "Quote", "Backquote", "Comma", "Period", "Slash", "NumLock", "NumpadDecimal",
		"NumpadEnter", "NumpadAdd", "NumpadSubtract", "NumpadMultiply", "NumpadDivide", "PrintScreen", "ScrollLock",
		"Pause", "ContextMenu"} {
		if ks, ok := KeysymFor(code); !ok || ks == 0 {
			t.Errorf("KeysymFor(%q) = %#x, %v", code, ks, ok)
		}
	}
	if ks, _ := KeysymFor("F24"); ks != 0xffd5 {
		t.Errorf("F24 = %#x, want 0xffd5", ks)
	}
	if ks, _ := KeysymFor("Numpad7"); ks != 0xffb7 {
		t.Errorf("Numpad7 = %#x, want KP_7", ks)
	}
}
