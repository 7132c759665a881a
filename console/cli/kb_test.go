package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKnowledgeBase drives `deskside kb` against a real relay: write,
// list, search (title first), edit, publish, link, delete, and the errors
// with their next steps.
func TestKnowledgeBase(t *testing.T) {
	r := startRelay(t)
	c := r.cli(t)
	c.login("admin", adminPassword)
	dir := t.TempDir()
	md := filepath.Join(dir, "jams.md")
	if err := os.WriteFile(md, []byte("# Jams\n\nOpen **tray 2**.\n\n<script>alert(1)</script>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := c.must("kb", "new", "--title", "Printer jams", "--file", md, "--category", "hardware", "--tags", "paper, Printer")
	if !strings.Contains(res.stdout, "Created draft printer-jams") || !strings.Contains(res.stdout, "deskside kb publish printer-jams") {
		t.Fatalf("new: %s", res)
	}
	c.stdin = "The printer on floor 2 needs paper. Printers everywhere need paper.\n"
	c.must("kb", "new", "--title", "Office supplies", "--file", "-")

	res = c.must("kb", "list")
	if !strings.Contains(res.stdout, "printer-jams") || !strings.Contains(res.stdout, "office-supplies") || !strings.Contains(res.stdout, "paper,printer") {
		t.Fatalf("list: %s", res)
	}
	res = c.must("kb", "search", "printer")
	if i, j := strings.Index(res.stdout, "printer-jams"), strings.Index(res.stdout, "office-supplies"); i < 0 || j < 0 || i > j {
		t.Fatalf("search printer: the matching title is not first:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, "«printer»") {
		t.Fatalf("search printer: the snippet does not mark the word:\n%s", res.stdout)
	}
	c.must("kb", "search", "zebra")

	res = c.must("kb", "show", "printer-jams", "--html")
	if !strings.Contains(res.stdout, "<strong>tray 2</strong>") || strings.Contains(res.stdout, "<script") {
		t.Fatalf("show --html: %s", res)
	}
	if err := os.WriteFile(md, []byte("Pull the sheet out gently.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := c.must("kb", "edit", "printer-jams", "--file", md, "--tags", "paper"); !strings.Contains(res.stdout, "version 2") {
		t.Fatalf("edit: %s", res)
	}
	res = c.must("kb", "show", "printer-jams")
	if !strings.Contains(res.stdout, "Pull the sheet out gently.") || !strings.Contains(res.stdout, "Title:     Printer jams") || strings.Contains(res.stdout, "printer,") {
		t.Fatalf("show after edit: %s", res)
	}
	c.must("kb", "publish", "printer-jams")
	if res := c.must("kb", "list", "--published"); !strings.Contains(res.stdout, "printer-jams") || strings.Contains(res.stdout, "office-supplies") {
		t.Fatalf("list --published: %s", res)
	}
	c.must("kb", "link", "printer-jams", "ds-7k3q")
	if res := c.must("kb", "list", "--ticket", "DS-7K3Q"); !strings.Contains(res.stdout, "printer-jams") {
		t.Fatalf("list --ticket: %s", res)
	}
	c.must("kb", "unlink", "printer-jams", "DS-7K3Q")
	c.fails(1, "deskside kb show printer-jams", "kb", "unlink", "printer-jams", "DS-7K3Q")
	c.must("kb", "unpublish", "printer-jams")
	c.must("kb", "delete", "office-supplies")
	c.fails(1, "deskside kb list", "kb", "show", "office-supplies")
	c.fails(2, "--title and --file are required", "kb", "new", "--title", "x")
	c.fails(2, "expected SLUG", "kb", "show")
}
