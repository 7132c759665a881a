package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotify drives `deskside notify` against a real relay: mail off and
// said so, SMTP set with the password from standard input and never shown,
// a refused plain-text server, webhooks with a generated secret shown
// once, the (empty) delivery log, and template show/set/default.
func TestNotify(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)

	if res := c.must("notify", "smtp", "show"); !strings.Contains(res.stdout, "SMTP is not configured: no mail is sent") {
		t.Fatalf("smtp show, off: %s", res)
	}
	c.fails(1, "deskside notify smtp set", "notify", "smtp", "test", "sam@example.com")
	c.fails(1, "--tls starttls or --tls tls", "notify", "smtp", "set", "--host", "smtp.example.com", "--tls", "none", "--from", "helpdesk@example.com")
	c.stdin = "smtp-password-1234\n"
	c.must("notify", "smtp", "set", "--host", "smtp.example.com", "--port", "465", "--tls", "tls", "--from", "Help Desk <helpdesk@example.com>",
		"--user", "relay", "--password-stdin")
	res := c.must("notify", "smtp", "show")
	if !strings.Contains(res.stdout, "smtp.example.com:465 (tls)") || !strings.Contains(res.stdout, "********") || strings.Contains(res.stdout, "smtp-password-1234") {
		t.Fatalf("smtp show: %s", res)
	}
	c.must("notify", "smtp", "set", "--off")
	if res := c.must("notify", "smtp", "show"); !strings.Contains(res.stdout, "not configured") {
		t.Fatalf("smtp show after --off: %s", res)
	}

	res = c.must("notify", "webhook", "add", "https://chat.example.com/hook?token=abc")
	if !strings.Contains(res.stdout, "Signing secret (shown once") {
		t.Fatalf("webhook add: %s", res)
	}
	id := strings.Fields(strings.TrimPrefix(res.stdout, "Added webhook "))[0]
	res = c.must("notify", "webhook", "list")
	if !strings.Contains(res.stdout, id) || strings.Contains(res.stdout, "token=abc") {
		t.Fatalf("webhook list: %s", res)
	}
	c.must("notify", "webhook", "deliveries")
	if res := c.must("notify", "queue"); !strings.Contains(res.stdout, "Nothing is waiting to be sent") {
		t.Fatalf("notify queue, empty: %s", res)
	}
	if res := c.must("notify", "queue", "--failed"); !strings.Contains(res.stdout, "Nothing has failed") {
		t.Fatalf("notify queue --failed, empty: %s", res)
	}
	c.fails(1, "deskside notify queue --failed", "notify", "retry", "42")
	c.fails(2, "not an outbox item's number", "notify", "retry", "DS-7K3Q")
	c.stdin = "short\n"
	c.fails(1, "shorter than 16 characters", "notify", "webhook", "add", "http://x.example.com/", "--secret-stdin")
	c.must("notify", "webhook", "remove", id)
	c.fails(1, "deskside notify webhook list", "notify", "webhook", "remove", id)

	if res := c.must("notify", "template", "show", "created"); !strings.Contains(res.stdout, "Subject: [{{.Code}}]") {
		t.Fatalf("template show: %s", res)
	}
	tmpl := filepath.Join(t.TempDir(), "created.tmpl")
	if err := os.WriteFile(tmpl, []byte("Subject: Ticket {{.Code}}\n\nHi {{.RequesterName}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("notify", "template", "set", "created", "--file", tmpl)
	if res := c.must("notify", "template", "show", "created"); !strings.Contains(res.stdout, "Subject: Ticket {{.Code}}") {
		t.Fatalf("template show after set: %s", res)
	}
	if err := os.WriteFile(tmpl, []byte("Subject: {{.Code\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(1, "template created", "notify", "template", "set", "created", "--file", tmpl)
	c.must("notify", "template", "set", "created", "--default")
	if res := c.must("notify", "template", "show", "created"); !strings.Contains(res.stdout, "Subject: [{{.Code}}]") {
		t.Fatalf("template show after --default: %s", res)
	}
}
