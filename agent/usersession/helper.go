//go:build linux || windows

package usersession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/internal/localipc"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// RunHelper is `deskside-agent desktop-helper`: it runs in the user's
// session (launched by the service's Runner, as the user: on Linux with
// the session's DISPLAY and XAUTHORITY, on Windows in the session's
// winsta0\default desktop), connects to the service's socket or pipe,
// checks that root (LocalSystem) serves it, and runs the session the
// service sends with the in-process desktop (desktop.NewManager). It
// returns when the session ends or the service goes away. Where the
// platform cannot capture yet (helperCapture), the session ends at once
// with that reason, before the user is asked.
// consentTimeout is how long its consent prompt waits (0: the default).
func RunHelper(ctx context.Context, socket string, log *slog.Logger, consentTimeout time.Duration) error {
	c, err := localipc.Dial(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := localipc.RootOr(0)(c.Peer()); err != nil {
		return fmt.Errorf("the socket %s is not the agent service's: %w", socket, err)
	}
	display := helperDisplay()
	if err := c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_HelperHello{HelperHello: &desksidev1.HelperHello{Display: display}}}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Without a dialog program (or when it cannot reach the display) the
	// prompt asks on the user's tray, through the service.
	asker := newTrayAsker(c)
	mgr := desktop.NewManager(desktop.Options{Logger: log, Display: display, ConsentTimeout: consentTimeout, Tray: asker})
	ended := make(chan struct{})
	started := false
	// Frames from the service; the session runs in its own goroutine.
	msgs := make(chan *desksidev1.LocalMessage)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m := &desksidev1.LocalMessage{}
			if err := c.Recv(m); err != nil {
				asker.closeAll()
				recvErr <- err
				return
			}
			if asker.deliver(m) {
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ended:
			return nil
		case err := <-recvErr:
			// The service is gone: end the session, then exit.
			cancel()
			if started {
				<-ended
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			if started {
				<-ended
			}
			return nil
		case m := <-msgs:
			switch b := m.GetBody().(type) {
			case *desksidev1.LocalMessage_StartDesktop:
				if started {
					continue // one session per helper
				}
				started = true
				req := b.StartDesktop
				go func() {
					defer close(ended)
					reason := ""
					if err := helperCapture(); err != nil {
						reason = err.Error()
					} else {
						reason = mgr.Run(ctx, req, func(sig *desksidev1.DesktopSignal) error {
							return c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_DesktopSignal{DesktopSignal: sig}})
						})
					}
					_ = c.Send(&desksidev1.LocalMessage{Body: &desksidev1.LocalMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{SessionId: req.GetSessionId(), Reason: reason}}})
				}()
			case *desksidev1.LocalMessage_DesktopSignal:
				ans := &desksidev1.LocalMessage{RefId: m.GetId(), Body: &desksidev1.LocalMessage_SignalAck{SignalAck: &desksidev1.SignalAck{}}}
				if err := mgr.Signal(b.DesktopSignal); err != nil {
					ans.Body = &desksidev1.LocalMessage_Error{Error: &desksidev1.LocalError{Message: err.Error()}}
				}
				if err := c.Send(ans); err != nil {
					cancel()
				}
			case *desksidev1.LocalMessage_EndDesktop:
				mgr.End(b.EndDesktop.GetSessionId(), b.EndDesktop.GetReason())
			}
		}
	}
}
