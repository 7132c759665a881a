package cursor

import (
	"bytes"
	"errors"
	"image/png"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	"github.com/deskside/deskside/internal/testkit"
)

const waitTimeout = 10 * time.Second

func TestFollowsThePointer(t *testing.T) {
	s := xvfb.Start(t)
	tc, err := testclient.Start(s.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.WarpPointer(100, 200); err != nil {
		t.Fatal(err)
	}
	testkit.CheckGoroutines(t)
	moves := make(chan Position, 64)
	shapes := make(chan Shape, 16)
	tr, err := Open(Config{Display: s.Display, Interval: 5 * time.Millisecond,
		OnMove: func(p Position) { moves <- p }, OnShape: func(s Shape) { shapes <- s }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	waitMove := func(x, y int) {
		t.Helper()
		timeout := time.After(waitTimeout)
		for {
			select {
			case p := <-moves:
				if p.X == x && p.Y == y && p.OnScreen {
					return
				}
			case <-timeout:
				t.Fatalf("no move to %d,%d reported", x, y)
			}
		}
	}
	waitShape := func() Shape {
		t.Helper()
		select {
		case s := <-shapes:
			img, err := png.Decode(bytes.NewReader(s.PNG))
			if err != nil {
				t.Fatalf("shape PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != s.Width || b.Dy() != s.Height || s.Width == 0 || s.Width > MaxSize {
				t.Fatalf("shape %dx%d, PNG %v", s.Width, s.Height, b)
			}
			return s
		case <-time.After(waitTimeout):
			t.Fatal("no cursor shape reported")
			return Shape{}
		}
	}

	// The start: where the pointer is and what it looks like.
	waitMove(100, 200)
	first := waitShape()

	// Moving is reported; standing still is not.
	if err := tc.WarpPointer(640, 360); err != nil {
		t.Fatal(err)
	}
	waitMove(640, 360)
	time.Sleep(50 * time.Millisecond)
	select {
	case p := <-moves:
		t.Fatalf("move %+v reported while the pointer stood still", p)
	default:
	}

	// A new cursor over the window is a new shape.
	if err := tc.SetCursor(testclient.CursorHand); err != nil {
		t.Fatal(err)
	}
	hand := waitShape()
	if hand.Serial == first.Serial || bytes.Equal(hand.PNG, first.PNG) {
		t.Errorf("the hand cursor looks like the first one (serial %d)", hand.Serial)
	}

	tr.Close()
	tr.Close() // idempotent
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{Display: ":64999", OnMove: func(Position) {}}); !errors.Is(err, ErrNoDisplay) {
		t.Errorf("Open(:64999) = %v, want ErrNoDisplay", err)
	}
	if _, err := Open(Config{Display: ":1"}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Open without callbacks = %v, want ErrBadConfig", err)
	}
}

func TestNoXFixes(t *testing.T) {
	s := xvfb.StartWith(t, xvfb.Config{Args: []string{"-extension", "XFIXES"}})
	if _, err := Open(Config{Display: s.Display, OnMove: func(Position) {}}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Open without XFIXES = %v, want ErrNotSupported", err)
	}
}
