package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/proto/wire"
)

// maxShown caps any single string printed on a terminal.
const maxShown = 1024

// clean makes an untrusted string (anything an agent reported, and the
// relay's messages) safe to print on a terminal: valid UTF-8, no ANSI
// escape sequences (removed whole, not only their ESC), no other control
// characters (C0, C1; tabs and newlines become spaces), no bidirectional
// overrides that would reorder the rest of the line, and at most maxShown
// runes. Every string shown goes through it, most of them via table and kv.
func clean(s string) string { return wire.CleanString(s, maxShown) }

// short is clean with a narrower cap, for table columns.
func short(s string, n int) string { return wire.CleanString(clean(s), n) }

// csvCell makes a value safe for a CSV file opened in a spreadsheet: it is
// cleaned, and a cell that a spreadsheet would read as a formula (starting
// with =, +, -, @, tab or carriage return, also after leading spaces) gets
// a leading single quote. encoding/csv does the quoting.
func csvCell(s string) string {
	risky := func(s string) bool { return s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) }
	c := clean(s)
	if risky(s) || risky(c) || risky(strings.TrimLeft(c, " ")) {
		return "'" + c
	}
	return c
}

// formatBytes renders a byte count as technicians read it ("16 GiB").
var formatBytes = wire.FormatBytes

// sizeOrDash is formatBytes, or "-" for an unknown (zero) size.
func sizeOrDash(n uint64) string {
	if n == 0 {
		return "-"
	}
	return formatBytes(n)
}

// formatRate renders bytes per second.
func formatRate(bps float64) string {
	if bps < 0 {
		bps = 0
	}
	return formatBytes(uint64(bps)) + "/s"
}

// ago renders how long before now t was: "just now", "45s ago", "3m ago",
// "5h ago", "2d ago"; "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < -time.Minute:
		return "in " + roughDuration(-d) + " (clock skew?)"
	case d < 10*time.Second:
		return "just now"
	}
	return roughDuration(d) + " ago"
}

// roughDuration renders d in its largest whole unit: "45s", "3m", "5h", "2d".
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// until renders how long after now t is: "in 11h", or "expired".
func until(now, t time.Time) string {
	if !t.After(now) {
		return "expired"
	}
	return "in " + roughDuration(t.Sub(now))
}

// fmtTime renders a timestamp in local time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func percent(part, whole uint64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", float64(part)*100/float64(whole))
}

// dfPercent is the Use% that df(1) prints for a file system: the share of
// the space users can have (used plus available, without the blocks
// reserved for root) that is used, rounded up. It is "-" when both are zero.
func dfPercent(used, avail uint64) string {
	p, ok := dfUse(used, avail)
	if !ok {
		return "-"
	}
	return strconv.FormatUint(p, 10) + "%"
}

// dfUse is df's Use% as a number; ok is false when used and avail are 0.
func dfUse(used, avail uint64) (pct uint64, ok bool) {
	whole, carry := bits.Add64(used, avail, 0)
	if carry != 0 { // beyond 16 EiB: scale both down
		used, avail = used>>1, avail>>1
		whole = used + avail
	}
	if whole == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(used, 100)
	q, r := bits.Div64(hi, lo, whole) // used ≤ whole, so q ≤ 100 fits
	if r != 0 {
		q++
	}
	return q, true
}

// ceilPercent renders a percentage the agent computed as df does, rounded
// up to a whole number.
func ceilPercent(p float64) string {
	if math.IsNaN(p) || p < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", math.Ceil(min(p, 100)))
}

func platform() string {
	return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// table writes an aligned table; every cell is cleaned and capped.
func table(w io.Writer, indent string, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(cells []string) {
		out := make([]string, len(cells))
		for i, c := range cells {
			out[i] = strings.TrimSpace(short(c, 60))
		}
		fmt.Fprintln(tw, indent+strings.Join(out, "\t"))
	}
	if header != nil {
		line(header)
	}
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

// kv writes aligned "key: value" lines, skipping empty values; every value
// is cleaned.
func kv(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	shown := 0
	for _, p := range pairs {
		if strings.TrimSpace(p[1]) == "" {
			continue
		}
		fmt.Fprintf(tw, "  %s:\t%s\n", p[0], strings.TrimSpace(clean(p[1])))
		shown++
	}
	if shown == 0 && len(pairs) > 0 {
		// A section with nothing in it (a virtual machine without DMI
		// tables, say) says so rather than printing a bare heading.
		fmt.Fprintln(tw, "  (not reported by this device)")
	}
	return tw.Flush()
}

// writeJSONArray writes messages as an indented JSON array, each element
// in protojson form.
func writeJSONArray[M proto.Message](w io.Writer, msgs []M) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, m := range msgs {
		if i > 0 {
			io.WriteString(w, ",")
		}
		if err := writeJSONElement(w, m); err != nil {
			return err
		}
	}
	if len(msgs) > 0 {
		io.WriteString(w, "\n")
	}
	_, err := io.WriteString(w, "]\n")
	return err
}

// writeJSONElement writes one array element on its own indented lines.
func writeJSONElement(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	// protojson's spacing is deliberately unstable; re-indent it.
	if err := json.Indent(&buf, b, "  ", "  "); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if _, err := io.WriteString(w, "\n  "); err != nil {
		return err
	}
	_, err = buf.WriteTo(w)
	return err
}

// writeJSON writes one message as indented protojson.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(w)
	return err
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// obviously safe characters.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/[]@%+=,", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// roleName renders a role as the relay does: "tier1", "admin".
func roleName(r fmt.Stringer) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}
