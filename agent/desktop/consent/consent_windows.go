package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

const (
	// wtsCurrentSession is WTS_CURRENT_SESSION: the caller's own session.
	wtsCurrentSession = 0xFFFFFFFF
	// noConsoleSession is WTSGetActiveConsoleSessionId's "none".
	noConsoleSession = 0xFFFFFFFF
)

var procWTSSendMessageW = windows.NewLazySystemDLL("wtsapi32.dll").NewProc("WTSSendMessageW")

// Dialog asks with a message box in the user's session (WTSSendMessage).
type Dialog struct {
	// Display is not used on Windows (the X display on Linux).
	Display string
	Logger  *slog.Logger
	// Console asks in the session attached to the console, as the service
	// in session 0 must; false asks in this process's own session (the
	// desktop helper, or an agent the user runs).
	Console bool
}

// target is the session to ask in.
func (d *Dialog) target() (uint32, error) {
	if !d.Console {
		return wtsCurrentSession, nil
	}
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noConsoleSession {
		return 0, errors.New("no user is logged in to a graphical session to ask (no session at the console)")
	}
	return id, nil
}

// sendMessage shows a message box in session and, with wait, returns the
// button the user pressed (IDTIMEOUT when timeout passed first).
func sendMessage(session uint32, title, text string, style uint32, timeout time.Duration, wait bool) (uint32, error) {
	t16, err := windows.UTF16FromString(title)
	if err != nil {
		return 0, err
	}
	m16, err := windows.UTF16FromString(text)
	if err != nil {
		return 0, err
	}
	secs := uint32((timeout + time.Second - 1) / time.Second)
	var resp uint32
	var w uintptr
	if wait {
		w = 1
	}
	// Lengths are in bytes, without the terminating NUL.
	r, _, e := procWTSSendMessageW.Call(0 /* WTS_CURRENT_SERVER_HANDLE */, uintptr(session),
		uintptr(unsafe.Pointer(&t16[0])), uintptr((len(t16)-1)*2),
		uintptr(unsafe.Pointer(&m16[0])), uintptr((len(m16)-1)*2),
		uintptr(style), uintptr(secs), uintptr(unsafe.Pointer(&resp)), w)
	if r == 0 {
		return 0, fmt.Errorf("WTSSendMessage to session %d: %w", session, e)
	}
	return resp, nil
}

// Ask implements session.Consent: Yes allows, No denies, and the timeout
// denies; No is the default button, so that typing into the desktop
// cannot allow by accident. The message box cannot be taken down early:
// when ctx ends first, Ask returns and the box closes at its timeout.
func (d *Dialog) Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	sess, err := d.target()
	if err != nil {
		return 0, err
	}
	timeout := askTimeout(r)
	type result struct {
		resp uint32
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := sendMessage(sess, Title, question(r, timeout, windowsButtons), askStyle, timeout, true)
		done <- result{resp, err}
	}()
	t := time.NewTimer(timeout + 2*time.Second)
	defer t.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return 0, fmt.Errorf("the prompt cannot reach the user: %w", res.err)
		}
		return answerOf(res.resp)
	case <-t.C:
		return desksidev1.DesktopConsent_ANSWER_NO_ANSWER, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Notify implements session.Consent: an OK message box that closes by
// itself after a minute; it does not wait for the user.
func (d *Dialog) Notify(ctx context.Context, r session.ConsentRequest) error {
	sess, err := d.target()
	if err != nil {
		return err
	}
	if _, err := sendMessage(sess, Title, r.Notice(), noticeStyle, time.Minute, false); err != nil {
		return fmt.Errorf("the user could not be told: %w", err)
	}
	return nil
}
