// Package desktop wires the agent's remote-desktop parts together: X11
// capture (agent/desktop/capture), the VP8 encoder (agent/desktop/encode),
// XTEST input (agent/desktop/input), the pointer follower
// (agent/desktop/cursor), clipboard sharing (agent/desktop/clipboard) and
// the user's consent prompt (agent/desktop/consent), the on-screen session
// banner (agent/desktop/banner)
// behind the session manager (agent/desktop/session) that the link hands
// StartDesktop requests to.
package desktop

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/deskside/deskside/agent/desktop/banner"
	"github.com/deskside/deskside/agent/desktop/capture"
	"github.com/deskside/deskside/agent/desktop/clipboard"
	"github.com/deskside/deskside/agent/desktop/consent"
	"github.com/deskside/deskside/agent/desktop/cursor"
	"github.com/deskside/deskside/agent/desktop/encode"
	"github.com/deskside/deskside/agent/desktop/input"
	"github.com/deskside/deskside/agent/desktop/session"
)

// Interface guards: the packages' types fit the session's seams.
var (
	_ session.Source    = (*source)(nil)
	_ session.Input     = input.Injector(nil)
	_ session.Clipboard = clipboard.Clipboard(nil)
	_ io.Closer         = cursor.Tracker(nil)
)

// Options configure the desktop.
type Options struct {
	Logger *slog.Logger
	// Display is the X display ("" = $DISPLAY).
	Display string
	// FPS caps the frame rate (default 30).
	FPS int
	// BitrateKbps is the starting bitrate (default 1200, encode's default);
	// the viewer's REMB estimate moves it from there.
	BitrateKbps int
	// ConsentTimeout is how long the user has to answer a consent prompt
	// (default session.DefaultConsentTimeout); no answer denies.
	ConsentTimeout time.Duration
	// Tray, when set, asks the consent question on the user's tray where
	// no dialog program can (consent.WithTray).
	Tray consent.Asker
}

// NewManager returns a session manager using the real capturer, encoder,
// injector, pointer follower and clipboard.
func NewManager(o Options) *session.Manager {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return session.NewManager(session.Config{
		Logger: log,
		FPS:    o.FPS,
		// Asked in the user's session: this process runs there (in-process
		// or as the desktop helper).
		Consent:        &consent.WithTray{Dialog: &consent.Dialog{Display: o.Display, Logger: log}, Tray: o.Tray},
		ConsentTimeout: o.ConsentTimeout,
		OpenSource: func(monitor int) (session.Source, error) {
			c, err := capture.Open(o.Display, log)
			if err != nil {
				return nil, err
			}
			if err := c.Select(monitor); err != nil {
				c.Close()
				return nil, fmt.Errorf("select monitor %d: %w", monitor, err)
			}
			return &source{c: c}, nil
		},
		OpenInput: func() (session.Input, error) {
			return input.Open(o.Display, log)
		},
		NewEncoder: func(w, h int) (session.Encoder, error) {
			// Key frames come on the viewer's request (PLI), so the periodic
			// ones can be rare: a 1080p key frame costs most of a second of
			// bandwidth.
			return encode.NewVP8(encode.Config{Width: w, Height: h, FPS: o.FPS, BitrateKbps: o.BitrateKbps, KeyframeInterval: time.Minute})
		},
		OpenCursor: func(ev session.CursorEvents) (io.Closer, error) {
			return cursor.Open(cursor.Config{
				Display: o.Display,
				Logger:  log,
				OnMove:  func(p cursor.Position) { ev.Move(p.X, p.Y, p.OnScreen) },
				OnShape: func(s cursor.Shape) {
					ev.Shape(session.CursorShape{Width: s.Width, Height: s.Height, HotX: s.HotX, HotY: s.HotY, PNG: s.PNG})
				},
			})
		},
		OpenClipboard: func(onChange func(string)) (session.Clipboard, error) {
			return clipboard.Open(clipboard.Config{Display: o.Display, Logger: log, OnChange: onChange})
		},
		// The user sees who is connected and can end the session at once.
		OpenBanner: func(b session.Banner) (io.Closer, error) {
			return banner.Open(banner.Config{Display: o.Display, Logger: log, Text: b.Text(), OnEnd: b.End})
		},
	})
}

// source adapts a Capturer.
type source struct{ c capture.Capturer }

func (s *source) Next() (session.Frame, error) {
	f, err := s.c.Capture()
	if err != nil {
		return session.Frame{}, err
	}
	return session.Frame{Width: f.Width, Height: f.Height, Stride: f.Stride, X: f.X, Y: f.Y, Monitor: f.Monitor,
		Pix: f.Pix, Changed: f.Changed}, nil
}

func (s *source) Monitors() ([]session.Monitor, error) {
	mons, err := s.c.Monitors()
	if err != nil {
		return nil, err
	}
	out := make([]session.Monitor, len(mons))
	for i, m := range mons {
		out[i] = session.Monitor{ID: m.ID, Name: m.Name, X: m.X, Y: m.Y, Width: m.Width, Height: m.Height, Primary: m.Primary}
	}
	return out, nil
}

func (s *source) Select(monitor int) error { return s.c.Select(monitor) }

// Changes passes on the capturer's change notifications (nil: poll).
func (s *source) Changes() <-chan struct{} {
	if n, ok := s.c.(capture.Notifier); ok {
		return n.Changes()
	}
	return nil
}

func (s *source) Close() error { return s.c.Close() }
