// Package desktop wires the agent's remote-desktop parts together: X11
// capture (agent/desktop/capture), the VP8 encoder (agent/desktop/encode)
// and XTEST input (agent/desktop/input) behind the session manager
// (agent/desktop/session) that the link hands StartDesktop requests to.
package desktop

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/deskside/deskside/agent/desktop/capture"
	"github.com/deskside/deskside/agent/desktop/encode"
	"github.com/deskside/deskside/agent/desktop/input"
	"github.com/deskside/deskside/agent/desktop/session"
)

// Options configure the desktop.
type Options struct {
	Logger *slog.Logger
	// Display is the X display ("" = $DISPLAY).
	Display string
	// FPS caps the frame rate (default 30).
	FPS int
	// BitrateKbps is the starting bitrate (default 1500).
	BitrateKbps int
}

// NewManager returns a session manager using the real capturer, encoder
// and injector.
func NewManager(o Options) *session.Manager {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return session.NewManager(session.Config{
		Logger: log,
		FPS:    o.FPS,
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
		OpenInput: func(monitor int) (session.Input, error) {
			dx, dy := 0, 0
			if monitor >= 0 {
				c, err := capture.Open(o.Display, log)
				if err != nil {
					return nil, err
				}
				mons, err := c.Monitors()
				c.Close()
				if err != nil {
					return nil, err
				}
				for _, m := range mons {
					if m.ID == monitor {
						dx, dy = m.X, m.Y
					}
				}
			}
			in, err := input.Open(o.Display, log)
			if err != nil {
				return nil, err
			}
			return &offsetInput{Injector: in, dx: dx, dy: dy}, nil
		},
		NewEncoder: func(w, h int) (session.Encoder, error) {
			// Key frames come on the viewer's request (PLI), so the periodic
			// ones can be rare: a 1080p key frame costs most of a second of
			// bandwidth.
			return encode.NewVP8(encode.Config{Width: w, Height: h, FPS: o.FPS, BitrateKbps: o.BitrateKbps, KeyframeInterval: time.Minute})
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
	return session.Frame{Width: f.Width, Height: f.Height, Stride: f.Stride, Pix: f.Pix, Changed: f.Changed}, nil
}

func (s *source) Close() error { return s.c.Close() }

// offsetInput moves monitor-relative pointer positions to the screen.
type offsetInput struct {
	input.Injector
	dx, dy int
}

func (o *offsetInput) MouseMove(x, y int) error { return o.Injector.MouseMove(x+o.dx, y+o.dy) }
