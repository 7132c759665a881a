package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/deskside/deskside/relay/store"
)

const techEmailSetting = "notify.technician_emails"

// TechnicianEmails returns the technicians' email addresses by name.
// (They live with the notification settings, not on the technician
// record: see docs/adr/0024-notifications.md.)
func (n *Notifier) TechnicianEmails(ctx context.Context) (map[string]string, error) {
	b, err := n.o.Settings.GetRelaySetting(ctx, techEmailSetting)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	err = json.Unmarshal(b, &m)
	return m, err
}

// SetTechnicianEmail sets (or, with "", removes) a technician's address.
func (n *Notifier) SetTechnicianEmail(ctx context.Context, name, email string) error {
	email = strings.TrimSpace(email)
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Name != "" {
			return fmt.Errorf("%w: email %q: a bare address such as alice@example.com", ErrInvalid, email)
		}
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	m, err := n.TechnicianEmails(ctx)
	if err != nil {
		return err
	}
	if email == "" {
		delete(m, name)
	} else {
		m[name] = email
	}
	b, _ := json.Marshal(m)
	return n.o.Settings.PutRelaySetting(ctx, techEmailSetting, b)
}
