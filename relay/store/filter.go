package store

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// SortOrDefault is f.Sort, or SortHostname when it is empty.
func (f DeviceFilter) SortOrDefault() DeviceSort {
	if f.Sort == "" {
		return SortHostname
	}
	return f.Sort
}

// Keyset reports whether f continues a listing after a key
// (AfterHostname/AfterID).
func (f DeviceFilter) Keyset() bool { return f.AfterHostname != "" || f.AfterID != "" }

// Validate checks what every backend refuses in a filter: an unknown
// sort, keyset paging with another order than hostname ascending, a
// negative offset and a negative or NaN free-space percentage.
func (f DeviceFilter) Validate() error {
	sortBy := f.SortOrDefault()
	switch sortBy {
	case SortHostname, SortLastSeen, SortOS, SortModel, SortCPU, SortMemory, SortDiskFree, SortUser, SortOnline:
	default:
		return fmt.Errorf("unknown sort %q", string(f.Sort))
	}
	if f.Keyset() && (sortBy != SortHostname || f.Descending) {
		dir := "ascending"
		if f.Descending {
			dir = "descending"
		}
		return fmt.Errorf("AfterHostname/AfterID paging needs sort %q ascending, not %q %s; use Offset",
			SortHostname, sortBy, dir)
	}
	if f.Offset < 0 {
		return fmt.Errorf("negative offset %d", f.Offset)
	}
	if math.IsNaN(f.DiskFreeBelowPercent) || f.DiskFreeBelowPercent < 0 {
		return fmt.Errorf("invalid disk free percentage %v", f.DiskFreeBelowPercent)
	}
	return nil
}

// SubstringMatch is one substring filter of a DeviceFilter: Sub is
// contained, case-insensitively, in at least one of the columns Cols
// (named as in every backend's devices table).
type SubstringMatch struct {
	Cols []string
	Sub  string
}

// osColumns are the columns the OS filter searches: the agent's OS and
// the inventory's.
var osColumns = []string{"os", "os_name", "os_version", "os_family", "os_display"}

// SubstringMatches are f's substring filters that are set: hostname, OS,
// user, model and the free-text query (over those, OS columns included,
// and the id).
func (f DeviceFilter) SubstringMatches() []SubstringMatch {
	var out []SubstringMatch
	for _, m := range []SubstringMatch{
		{[]string{"hostname"}, f.Hostname},
		{osColumns, f.OS},
		{[]string{"user_name"}, f.User},
		{[]string{"model"}, f.Model},
		{append([]string{"hostname", "user_name", "model", "id"}, osColumns...), f.Query},
	} {
		if m.Sub != "" {
			out = append(out, m)
		}
	}
	return out
}

// likeEscaper makes user input match itself literally in LIKE … ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ContainsPattern is the LIKE pattern (with ESCAPE '\') for "contains s":
// '%', '_' and '\' in s match themselves.
func ContainsPattern(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}

// Nanos converts t to the stored form of every backend: Unix nanoseconds,
// 0 for the zero time. Times outside the years 1678–2262 are not
// representable.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos is the inverse of Nanos; times come back in UTC. 0 reads back
// as the zero time (so the instant 1970-01-01T00:00:00Z does too).
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
