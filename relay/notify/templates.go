package notify

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/deskside/deskside/relay/store"
)

//go:embed templates/*.tmpl
var defaultTemplates embed.FS

// Template names.
const (
	TemplateCreated   = "created"
	TemplateReply     = "reply"
	TemplateResolved  = "resolved"
	TemplateAssigned  = "assigned"
	TemplateEscalated = "escalated"
	// TemplateAnswered mails technicians a requester's answer by email.
	TemplateAnswered = "answered"
)

// Templates lists the template names.
var Templates = []string{TemplateCreated, TemplateReply, TemplateResolved, TemplateAssigned, TemplateEscalated, TemplateAnswered}

// MaxTemplateBytes caps an edited template.
const MaxTemplateBytes = 16 << 10

// ErrInvalid wraps a refused setting or template.
var ErrInvalid = errors.New("notify: invalid")

const templatePrefix = "notify.template."

// DefaultTemplate returns the built-in text of a template.
func DefaultTemplate(name string) (string, error) {
	if !slices.Contains(Templates, name) {
		return "", fmt.Errorf("%w: unknown template %q: one of %s", ErrInvalid, name, strings.Join(Templates, ", "))
	}
	b, err := defaultTemplates.ReadFile("templates/" + name + ".tmpl")
	return string(b), err
}

// Template returns a template's text (the admin's edit, or the default)
// and whether it is the default.
func (n *Notifier) Template(ctx context.Context, name string) (string, bool, error) {
	def, err := DefaultTemplate(name)
	if err != nil {
		return "", false, err
	}
	b, err := n.o.Settings.GetRelaySetting(ctx, templatePrefix+name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) == 0) {
		return def, true, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), false, nil
}

// SetTemplate replaces a template's text after checking that it parses
// and renders with a sample event; "" restores the default.
func (n *Notifier) SetTemplate(ctx context.Context, name, text string) error {
	if _, err := DefaultTemplate(name); err != nil {
		return err
	}
	if len(text) > MaxTemplateBytes {
		return fmt.Errorf("%w: the template is %d bytes; the limit is %d", ErrInvalid, len(text), MaxTemplateBytes)
	}
	if text != "" {
		sample := Event{Code: "DS-7K3Q", Subject: "Printer offline", RequesterName: "Sam", RequesterEmail: "sam@example.com", Actor: "alice", Tier: 2, Text: "Try again now."}
		if _, _, err := render(name, text, sample); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return n.o.Settings.PutRelaySetting(ctx, templatePrefix+name, []byte(text))
}

// render executes a template; its first line is "Subject: ...", then a
// blank line and the body.
func render(name, text string, ev Event) (subject, body string, err error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", "", fmt.Errorf("template %s: %v", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, ev); err != nil {
		return "", "", fmt.Errorf("template %s: %v", name, err)
	}
	out := buf.String()
	first, rest, _ := strings.Cut(out, "\n")
	s, ok := strings.CutPrefix(first, "Subject:")
	if !ok {
		return "", "", fmt.Errorf("template %s: the first line must be \"Subject: ...\"", name)
	}
	return oneLine(s), strings.TrimLeft(rest, "\r\n"), nil
}

// oneLine keeps header text on one line (no header injection).
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
