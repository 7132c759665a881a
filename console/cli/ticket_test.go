package cli_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/server/servertest"
)

// TestTicketCommands works a ticket from the command line against a real
// relay and agent: filed for a device, shown (SLA, device since filing,
// timeline), listed and searched, replied to, escalated, claimed, linked
// to a command run with --ticket, resolved, reopened and merged; and the
// errors name next steps.
func TestTicketCommands(t *testing.T) {
	f := startFleet(t)
	dev := f.agent(t, "ticket-host")
	servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		_, err := f.st.Srv.Store().GetInventory(t.Context(), dev)
		return err
	})
	c := f.admin(t)

	res := c.must("ticket", "new", "--subject", "Printer jams on floor 2", "--device", dev, "--requester", "Ada", "--email", "ada@example.com",
		"--priority", "urgent", "--description", "Every page since Monday.")
	m := regexp.MustCompile(`Filed (DS-[2-9A-HJ-NP-Z]{4}): Printer jams on floor 2 \(urgent, tier 1\)`).FindStringSubmatch(res.stdout)
	if m == nil || !strings.Contains(res.stdout, "inventory and health were kept") {
		t.Fatalf("ticket new: %s", res)
	}
	code := m[1]
	lower := strings.ToLower(strings.TrimPrefix(code, "DS-"))

	res = c.must("ticket", "show", lower)
	for _, want := range []string{code, "Status:", "new", "First response:", "left", "Ada <ada@example.com>", "Device " + dev + " since filing",
		"inventory unchanged", "filed the ticket", "Every page since Monday."} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("ticket show lacks %q:\n%s", want, res.stdout)
		}
	}

	c.must("ticket", "reply", code, "--internal", "checked the toner")
	c.fails(2, "--reason is required", "ticket", "escalate", code, "--tier", "2")
	res = c.must("ticket", "escalate", code, "--tier", "2", "--reason", "needs a driver rollback")
	if !strings.Contains(res.stdout, "Moved "+code+": new, tier 2, unassigned.") {
		t.Errorf("escalate: %s", res)
	}
	res = c.must("ticket", "list", "--queue", "unassigned")
	if !strings.Contains(res.stdout, code) || !strings.Contains(res.stdout, "reply ") {
		t.Errorf("unassigned queue: %s", res)
	}
	c.must("ticket", "claim", code)
	res = c.must("ticket", "list", "--queue", "mine")
	if !strings.Contains(res.stdout, code) || !strings.Contains(res.stdout, "open") {
		t.Errorf("my queue: %s", res)
	}

	res = c.must("run", dev, "--ticket", code, "--", "echo", "rolled back")
	if res.stdout != "rolled back\n" || !strings.Contains(res.stderr, "linked to "+code) {
		t.Errorf("run --ticket: %s", res)
	}
	c.must("ticket", "reply", code, "Rolled the printer driver back; please print a test page.")
	c.must("ticket", "status", code, "resolved")
	c.fails(1, "reopen it first", "ticket", "reply", code, "more")
	c.must("ticket", "status", code, "open", "--reason", "jammed again")

	dup := strings.TrimSpace(c.must("ticket", "new", "--subject", "Printer broken", "-q").stdout)
	res = c.must("ticket", "merge", dup, "--into", code)
	if !strings.Contains(res.stdout, "Merged "+dup+" into "+code) {
		t.Errorf("merge: %s", res)
	}
	res = c.must("ticket", "show", dup)
	if !strings.Contains(res.stdout, "Merged into:") || !strings.Contains(res.stdout, "merged into "+code) {
		t.Errorf("merged duplicate: %s", res)
	}

	res = c.must("ticket", "show", code)
	for _, want := range []string{"[internal] checked the toner", "escalated tier 1 → 2: needs a driver rollback", "assignee nobody → admin",
		"linked command on " + dev, "replied: Rolled the printer driver back", "status open → resolved", "status resolved → open: jammed again",
		"merged " + dup + " into this ticket", "First response:  met"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("timeline lacks %q:\n%s", want, res.stdout)
		}
	}

	res = c.must("ticket", "list", "--search", "driver", "--status", "all")
	if !strings.Contains(res.stdout, code) || strings.Contains(res.stdout, dup) {
		t.Errorf("search driver: %s", res)
	}
	res = c.must("ticket", "list", "--search", "printer", "--status", "all")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); len(lines) != 3 {
		t.Errorf("search printer: %s", res)
	}
	res = c.must("ticket", "list", "--status", "closed", "--device", dev)
	if !strings.Contains(res.stdout, "No tickets match") {
		t.Errorf("no closed tickets on the device: %s", res)
	}

	res = c.must("ticket", "sla", "--set", "urgent=10m/2h")
	if !strings.Contains(res.stdout, "urgent    10m0s") {
		t.Errorf("sla: %s", res)
	}
	c.fails(1, "no ticket DS-ZZZZ", "ticket", "show", "DS-ZZZZ")
	c.fails(1, "no 0, O, 1 or I", "ticket", "show", "DS-O0I1")
	c.fails(2, "unknown status", "ticket", "status", code, "done")
}
