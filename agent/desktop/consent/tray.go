package consent

import (
	"context"
	"errors"
	"fmt"

	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// ErrNoTray: no dialog program could ask, and no tray of the user is
// connected to the agent to ask instead. Its message is what the console
// shows (after "the device's policy requires the user's consent, but").
var ErrNoTray = errors.New("no way to ask the user: install zenity or kdialog, or start deskside-tray in the user's session")

// Asker asks the user some other way than a dialog: their tray
// (agent/traysvc, directly or over the helper's IPC). It returns ErrNoTray
// when none of the user's trays is connected.
type Asker interface {
	Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error)
}

// AskerFunc is an Asker.
type AskerFunc func(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error)

// Ask implements Asker.
func (f AskerFunc) Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	return f(ctx, r)
}

// WithTray asks with the native dialog, and on the user's tray where the
// device has no dialog program (ErrNoDialog) or the dialog cannot reach
// the display (ErrDisplayUnreachable). Notify is the dialog's.
type WithTray struct {
	Dialog session.Consent
	// Tray asks on the user's tray (nil: the dialog only).
	Tray Asker
}

var _ session.Consent = (*WithTray)(nil)

// Ask implements session.Consent.
func (w *WithTray) Ask(ctx context.Context, r session.ConsentRequest) (desksidev1.DesktopConsent_Answer, error) {
	a, err := w.Dialog.Ask(ctx, r)
	if err == nil || w.Tray == nil || !(errors.Is(err, ErrNoDialog) || errors.Is(err, ErrDisplayUnreachable)) {
		return a, err
	}
	a, terr := w.Tray.Ask(ctx, r)
	switch {
	case terr == nil:
		return a, nil
	case errors.Is(terr, ErrNoTray) && errors.Is(err, ErrNoDialog):
		return 0, ErrNoTray
	case errors.Is(terr, ErrNoTray):
		return 0, fmt.Errorf("%w, and no tray of the user is connected to ask instead (start deskside-tray in the user's session)", err)
	}
	return 0, fmt.Errorf("%v; asking on the user's tray instead failed: %w", err, terr)
}

// Notify implements session.Consent with the dialog's notice.
func (w *WithTray) Notify(ctx context.Context, r session.ConsentRequest) error {
	return w.Dialog.Notify(ctx, r)
}
