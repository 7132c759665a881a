package tray

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// SessionDisplay is the X display and Xauthority file of the session the
// tray runs in, from its environment ("" when it has no X display).
func SessionDisplay() (display, xauthority string) {
	display = os.Getenv("DISPLAY")
	if display == "" {
		return "", ""
	}
	xauthority = os.Getenv("XAUTHORITY")
	if xauthority == "" {
		if home, err := os.UserHomeDir(); err == nil {
			xauthority = filepath.Join(home, ".Xauthority")
		}
	}
	return display, xauthority
}

// RegisterSession tells the agent service at path which X display this
// user's session has, for machines where logind does not know it (no
// systemd-logind, a session started by hand): the service then serves
// remote sessions on it (agent/usersession Finder.Register). The
// registration holds while its connection is open; it reconnects with
// backoff until ctx ends. It returns at once when there is no display.
func RegisterSession(ctx context.Context, path, display, xauthority string, log *slog.Logger) {
	if display == "" {
		return
	}
	log = cmp.Or(log, slog.Default())
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := registerOnce(ctx, path, display, xauthority, log)
		if ctx.Err() != nil {
			return
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			log.Warn("the agent service refused this session's display; remote sessions use the one logind reports", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

func registerOnce(ctx context.Context, path, display, xauthority string, log *slog.Logger) error {
	c, err := localipc.Dial(path)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Send(&desksidev1.LocalMessage{Id: 1, Body: &desksidev1.LocalMessage_RegisterSession{
		RegisterSession: &desksidev1.RegisterSession{Display: display, Xauthority: xauthority}}}); err != nil {
		return err
	}
	var m desksidev1.LocalMessage
	if err := c.Recv(&m); err != nil {
		return err
	}
	if e := m.GetError(); e != nil {
		return &refusedError{e.GetMessage()}
	}
	log.Info("registered this session's display with the agent service", "display", display)
	for c.Recv(&m) == nil {
	}
	return nil
}
