// Package consent asks the desktop's logged-in user whether a technician
// may see their screen, and tells them of sessions that do not ask. On
// Linux it uses the desktop's own dialog program (zenity, or KDE's
// kdialog) and notifications (notify-send, else a zenity window); on
// Windows a message box sent to the user's session (WTSSendMessage),
// which works from the service in session 0 as from the user's session.
// It runs where the desktop is: in the agent when it runs in the user's
// session, else in the desktop helper the service starts there
// (agent/usersession, docs/adr 27, 28).
package consent

import (
	"errors"
	"fmt"
	"time"

	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Title is the prompt window's title.
const Title = "Deskside remote support"

// Errors.
var (
	// ErrNoDialog: neither zenity nor kdialog is installed.
	ErrNoDialog = errors.New("no way to ask the user: install zenity (Debian: apt-get install zenity) or kdialog on the device")
	// ErrDisplayUnreachable: the dialog program could not open the
	// user's display.
	ErrDisplayUnreachable = errors.New("the prompt cannot reach the user's display")
)

var _ session.Consent = (*Dialog)(nil)

// askTimeout is how long the prompt waits for r's answer.
func askTimeout(r session.ConsentRequest) time.Duration {
	if r.Timeout <= 0 {
		return session.DefaultConsentTimeout
	}
	return r.Timeout
}

// question is the prompt's text: the request, a warning, what the buttons
// do when their labels do not say it (buttons, "" or a sentence), and the
// timeout.
func question(r session.ConsentRequest, timeout time.Duration, buttons string) string {
	return r.Text() + "\n\nAllow only if you asked for help." + buttons + " No answer within " + timeout.Round(time.Second).String() + " denies."
}

// Windows message boxes (winuser.h), platform-free so that Linux tests
// check the mapping.
const (
	mbOK            = 0x00000000
	mbYesNo         = 0x00000004
	mbIconQuestion  = 0x00000020
	mbIconInfo      = 0x00000040
	mbDefButton2    = 0x00000100
	mbSystemModal   = 0x00001000
	mbSetForeground = 0x00010000

	idYes     = 6
	idNo      = 7
	idTimeout = 32000
	idAsync   = 32001

	// askStyle: Yes / No with No the default (Return denies, so that
	// typing into the desktop cannot allow by accident), above every
	// window and brought to the front.
	askStyle = mbYesNo | mbIconQuestion | mbDefButton2 | mbSystemModal | mbSetForeground
	// noticeStyle: an OK box that does not wait.
	noticeStyle = mbOK | mbIconInfo | mbSetForeground

	// windowsButtons says what Yes and No do (a message box's labels are
	// the system's).
	windowsButtons = " Yes allows, No denies."
)

// answerOf maps a message box's answer to the user's: Yes allows, No
// denies, the timeout is no answer (which denies); anything else is an
// error.
func answerOf(resp uint32) (desksidev1.DesktopConsent_Answer, error) {
	switch resp {
	case idYes:
		return desksidev1.DesktopConsent_ANSWER_ALLOWED, nil
	case idNo:
		return desksidev1.DesktopConsent_ANSWER_DENIED, nil
	case idTimeout:
		return desksidev1.DesktopConsent_ANSWER_NO_ANSWER, nil
	case idAsync:
		return 0, fmt.Errorf("the prompt did not wait for the user's answer (IDASYNC)")
	}
	return 0, fmt.Errorf("the prompt gave an answer that is not Yes or No (%d)", resp)
}
