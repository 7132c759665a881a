package cli

import (
	"flag"
	"github.com/deskside/deskside/proto/wire"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain host", "plain host"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"\x1b[1;32;40mbold\x1b[K", "bold"},
		{"\x1b]0;window title\x07text", "text"},
		{"\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"\u009b31mc1 csi", "c1 csi"},
		{"\u009d0;title\u009cafter", "after"},
		{"\x1bPdcs\x1b\\x", "x"},
		{"\x1b(Bcharset", "charset"},
		{"\x1bcreset", "reset"},
		{"tab\there\nnew\rline", "tab here new line"},
		{"nul\x00del\x7fbell\a", "nuldelbell"},
		{"admin\u202egnp.exe", "admingnp.exe"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"trailing ESC \x1b", "trailing ESC "},
		{"=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0"},
	} {
		if got := clean(tc.in); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := clean(strings.Repeat("x", 5000)); utf8.RuneCountInString(got) != maxShown {
		t.Errorf("clean does not cap: %d runes", utf8.RuneCountInString(got))
	}
}

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"host-1", "host-1"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "' =1"},
		{"\r=1", "' =1"},
		{"  =1", "'  =1"},
		{"\x1b[31m=1", "'=1"},
		{"a=b", "a=b"},
		{"", ""},
	} {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClean checks what clean and csvCell promise for any input.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "host", "\x1b[31mred", "\x1b]0;t\x07", "\u009b1m", "=1+1", "\t-2", "a\u202eb", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := clean(s)
		if !utf8.ValidString(c) {
			t.Fatalf("clean(%q) = %q is not valid UTF-8", s, c)
		}
		for _, r := range c {
			if unicode.IsControl(r) || wire.IsBidiControl(r) {
				t.Fatalf("clean(%q) = %q holds %U", s, c, r)
			}
		}
		if n := utf8.RuneCountInString(c); n > maxShown {
			t.Fatalf("clean(%q) has %d runes", s, n)
		}
		if v := csvCell(s); v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			t.Fatalf("csvCell(%q) = %q starts a formula", s, v)
		}
	})
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 512: "512 B", 1024: "1 KiB", 1536: "1.5 KiB", 16 << 30: "16 GiB",
		8369352704: "7.8 GiB", 512 << 20: "512 MiB", 500 << 30: "500 GiB", 3 << 40: "3 TiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "just now", 5 * time.Second: "just now", 45 * time.Second: "45s ago", 3 * time.Minute: "3m ago",
		5 * time.Hour: "5h ago", 30 * time.Hour: "30h ago", 72 * time.Hour: "3d ago", -5 * time.Minute: "in 5m (clock skew?)",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(-%s) = %q, want %q", d, got, want)
		}
	}
	if got := ago(now, time.Time{}); got != "never" {
		t.Errorf("ago(zero) = %q", got)
	}
}

func TestNormalizeRelay(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example.com:7443": "relay.example.com:7443",
		"relay.example.com":      "relay.example.com:7443",
		"10.0.0.1":               "10.0.0.1:7443",
		"[::1]:9000":             "[::1]:9000",
		"::1":                    "[::1]:7443",
		"":                       "",
		"a b":                    "",
	} {
		got, err := normalizeRelay(in)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("normalizeRelay(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"ID"}, []string{"ID"}, false},
		{[]string{"ID", "--json"}, []string{"ID"}, true},
		{[]string{"--json", "ID"}, []string{"ID"}, true},
		{[]string{"--", "-weird-id"}, []string{"-weird-id"}, false},
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		pos, err := parse(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *asJSON != tc.json {
			t.Errorf("parse(%q) = %q, json %v, %v", tc.args, pos, *asJSON, err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example.com:7443": "relay.example.com:7443",
		"[::1]:7443":             "[::1]:7443",
		"a b":                    "'a b'",
		"it's;rm":                `'it'\''s;rm'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// The same cases as console/web/test/format.test.ts: both consoles agree
// with df.
func TestDFPercent(t *testing.T) {
	for _, c := range []struct {
		used, avail uint64
		want        string
	}{
		{0, 0, "-"}, {0, 100, "0%"}, {100, 0, "100%"},
		{17, 83, "17%"}, {170, 829, "18%"}, // 17.02 % rounds up, as df
		// The machine: 77 GiB available, reserved blocks outside both.
		{16 << 30, 77 << 30, "18%"},
		{1<<63 + 5, 1 << 63, "51%"}, // no overflow
	} {
		if got := dfPercent(c.used, c.avail); got != c.want {
			t.Errorf("dfPercent(%d, %d) = %q, want %q", c.used, c.avail, got, c.want)
		}
	}
	for p, want := range map[float64]string{0: "0%", 16.3: "17%", 17: "17%", 99.01: "100%", 100: "100%", -1: "-"} {
		if got := ceilPercent(p); got != want {
			t.Errorf("ceilPercent(%v) = %q, want %q", p, got, want)
		}
	}
}
