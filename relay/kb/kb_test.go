package kb_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/kb"
	"github.com/deskside/deskside/relay/store/sqlite"
)

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Printer jams":                "printer-jams",
		"  VPN: drops after 5 min!  ": "vpn-drops-after-5-min",
		"Café crème":                  "cafe-creme",
		"日本語":                         "article",
		"":                            "article",
		strings.Repeat("word ", 30):   strings.TrimSuffix(strings.Repeat("word-", 12), "-"),
		strings.Repeat("x", 100):      strings.Repeat("x", kb.MaxSlug),
		"<script>alert(1)</script>":   "script-alert-1-script",
		"../../etc/passwd":            "etc-passwd",
	} {
		if got := kb.Slug(in); got != want || !kb.ValidSlug(got) {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSearchTerms(t *testing.T) {
	for in, want := range map[string][]string{
		"How do I fix the printer?":       {"fix", "printer"},
		`printer" OR title:x NEAR(a) *`:   {"printer", "title", "x", "near"},
		"the":                             {"the"},
		"Printer printer PRINTER":         {"printer"},
		"':&|!()<>\\":                     nil,
		"wi-fi 5GHz":                      {"wi", "fi", "5ghz"},
		"café":                            {"café"},
		strings.Repeat("a", kb.MaxTerm+1): nil,
	} {
		if got := kb.SearchTerms(in); !slices.Equal(got, want) {
			t.Errorf("SearchTerms(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len(kb.SearchTerms(strings.Repeat("w ", 5) + "a b c d e f g h i j k l m n o p")); n != kb.MaxTerms {
		t.Errorf("%d terms kept, want %d", n, kb.MaxTerms)
	}
}

func TestSnippetParts(t *testing.T) {
	got := kb.SnippetParts("Open\n\x02tray\x03 two, \x02tray\x03\x03 end\x02")
	want := []kb.Part{{"Open ", false}, {"tray", true}, {" two, ", false}, {"tray", true}, {" end", false}}
	if !slices.Equal(got, want) {
		t.Fatalf("SnippetParts: %+v, want %+v", got, want)
	}
}

func TestContentClean(t *testing.T) {
	c, err := kb.Content{Title: " Printer\njams ", Body: "a\r\nb\x00\x02c", Category: " Hardware ", Tags: []string{"Printer", "paper jam", "printer", ""}}.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if c.Title != "Printer jams" || c.Body != "a\nbc" || c.Category != "Hardware" || !slices.Equal(c.Tags, []string{"paper-jam", "printer"}) {
		t.Fatalf("cleaned: %+v", c)
	}
	for name, bad := range map[string]kb.Content{
		"no title":      {Body: "x"},
		"long title":    {Title: strings.Repeat("t", kb.MaxTitle+1), Body: "x"},
		"no body":       {Title: "t", Body: " \n"},
		"long body":     {Title: "t", Body: strings.Repeat("b", kb.MaxBody+1)},
		"long category": {Title: "t", Body: "x", Category: strings.Repeat("c", kb.MaxCategory+1)},
		"bad tag":       {Title: "t", Body: "x", Tags: []string{"a<b"}},
		"long tag":      {Title: "t", Body: "x", Tags: []string{strings.Repeat("g", kb.MaxTag+1)}},
		"many tags":     {Title: "t", Body: "x", Tags: strings.Fields("a b c d e f g h i j k l m n o p q")},
	} {
		if _, err := bad.Clean(); !errors.Is(err, kb.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func TestTicketCode(t *testing.T) {
	if c, err := kb.TicketCode(" ds-7k3q "); err != nil || c != "DS-7K3Q" {
		t.Fatalf("TicketCode: %q %v", c, err)
	}
	for _, bad := range []string{"", "DS", "DS 7K3Q", "DS-7K3Q;", strings.Repeat("A", 33)} {
		if _, err := kb.TicketCode(bad); !errors.Is(err, kb.ErrInvalid) {
			t.Errorf("TicketCode(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestBase(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := kb.New(st, nil)
	a1, err := b.Create(ctx, "alice", kb.Content{Title: "Printer jams", Body: "one"})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b.Create(ctx, "bob", kb.Content{Title: "Printer: jams!", Body: "two"})
	if err != nil {
		t.Fatal(err)
	}
	if a1.Slug != "printer-jams" || a2.Slug != "printer-jams-2" {
		t.Fatalf("slugs %q, %q", a1.Slug, a2.Slug)
	}
	if _, err := b.Update(ctx, "carol", a1.ID, a1.Version, kb.Content{Title: "Printer jams", Body: "one, edited"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "dave", a1.ID, a1.Version, kb.Content{Title: "Printer jams", Body: "lost"}); !errors.Is(err, kb.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if _, err := b.Get(ctx, 0, "no-such"); !errors.Is(err, kb.ErrNotFound) {
		t.Fatalf("unknown slug: %v", err)
	}
	if _, err := b.Get(ctx, 0, "Bad Slug"); !errors.Is(err, kb.ErrInvalid) {
		t.Fatalf("malformed slug: %v", err)
	}
	hits, err := b.Search(ctx, "how do I clear printer jams?", false, "", 0)
	if err != nil || len(hits) != 2 {
		t.Fatalf("search: %v %+v", err, hits)
	}
	code, created, err := b.Link(ctx, "alice", a1.ID, "ds-7k3q")
	if err != nil || code != "DS-7K3Q" || !created {
		t.Fatalf("link: %q %v %v", code, created, err)
	}
	arts, err := b.ForTicket(ctx, "DS-7k3q")
	if err != nil || len(arts) != 1 || arts[0].ID != a1.ID {
		t.Fatalf("for ticket (case-insensitive): %+v %v", arts, err)
	}
}
