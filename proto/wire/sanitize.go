package wire

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Caps bound what an agent may report. Strings longer than their cap are
// truncated (the relay never refuses a report for a long name); lists
// longer than their cap make the report refused with ErrTooLarge, because
// silently dropping entries would store a false inventory.
type Caps struct {
	// DefaultString is the rune cap of any string field not listed in Strings.
	DefaultString int
	// DefaultList is the cap on any repeated field not listed in Lists.
	DefaultList int
	// Strings and Lists override the defaults by full field name,
	// e.g. "deskside.v1.Software.name".
	Strings map[protoreflect.FullName]int
	Lists   map[protoreflect.FullName]int
}

// DefaultCaps are the caps the relay applies.
var DefaultCaps = Caps{
	DefaultString: 256,
	DefaultList:   256,
	Strings: map[protoreflect.FullName]int{
		"deskside.v1.CollectorError.message": 1024,
		"deskside.v1.Partition.device":       512,
		"deskside.v1.Partition.mountpoint":   1024,
		"deskside.v1.MountUsage.mountpoint":  1024,
		"deskside.v1.Software.name":          256,
		"deskside.v1.Software.version":       128,
	},
	Lists: map[protoreflect.FullName]int{
		"deskside.v1.Inventory.software":         20000,
		"deskside.v1.Inventory.partitions":       1024,
		"deskside.v1.Inventory.disks":            512,
		"deskside.v1.Inventory.nics":             512,
		"deskside.v1.NetworkInterface.addresses": 128,
		"deskside.v1.HealthSample.mounts":        1024,
		"deskside.v1.HealthSample.top_cpu":       16,
		"deskside.v1.HealthSample.top_memory":    16,
		"deskside.v1.HealthReport.samples":       MaxHealthBatch,
	},
}

var (
	// ErrTooLarge is returned when a report exceeds a count cap.
	ErrTooLarge = errors.New("report too large")
	// ErrInvalid is returned when a report is malformed.
	ErrInvalid = errors.New("report invalid")
)

// Sanitize walks m and every message inside it: each string is made valid
// UTF-8, stripped of control characters and truncated to its cap; each
// repeated field is checked against its cap; floats must be finite.
// Sanitize modifies m in place. It returns an error wrapping ErrTooLarge or
// ErrInvalid that names the offending field.
func (c Caps) Sanitize(m protoreflect.Message) error {
	w := walker{c: c, root: m.Descriptor().Name(), path: make([]pathElem, 0, 8)}
	return w.walk(m)
}

// walker is one Sanitize call. It keeps the path to the field being
// checked as a stack and spells it out only for an error: a report costs
// no string building.
type walker struct {
	c    Caps
	root protoreflect.Name
	path []pathElem
}

// pathElem is a field on the path, with its list index (-1: not a list).
type pathElem struct {
	name  protoreflect.Name
	index int
}

// at returns the path to the field being checked, e.g.
// "HealthReport.samples[3].mounts[0].mountpoint".
func (w *walker) at() string {
	var b strings.Builder
	b.WriteString(string(w.root))
	for _, e := range w.path {
		b.WriteByte('.')
		b.WriteString(string(e.name))
		if e.index >= 0 {
			fmt.Fprintf(&b, "[%d]", e.index)
		}
	}
	return b.String()
}

func (w *walker) walk(m protoreflect.Message) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		w.path = append(w.path, pathElem{name: fd.Name(), index: -1})
		defer func() { w.path = w.path[:len(w.path)-1] }()
		switch {
		case fd.IsList():
			l := v.List()
			if limit := w.c.listCap(fd); l.Len() > limit {
				err = fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooLarge, w.at(), l.Len(), limit)
				return false
			}
			for i := 0; i < l.Len(); i++ {
				w.path[len(w.path)-1].index = i
				nv, e := w.value(fd, l.Get(i))
				if e != nil {
					err = e
					return false
				}
				if nv.IsValid() {
					l.Set(i, nv)
				}
			}
		case fd.IsMap():
			err = fmt.Errorf("%w: %s: maps are not accepted", ErrInvalid, w.at())
			return false
		default:
			nv, e := w.value(fd, v)
			if e != nil {
				err = e
				return false
			}
			if nv.IsValid() {
				m.Set(fd, nv)
			}
		}
		return true
	})
	return err
}

// value checks one scalar or message value; it returns a replacement value
// (or an invalid Value when none is needed).
func (w *walker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if ns := CleanString(s, w.c.stringCap(fd)); ns != s {
			return protoreflect.ValueOfString(ns), nil
		}
	case protoreflect.BytesKind:
		if len(v.Bytes()) > w.c.DefaultString*4 {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, w.at(), len(v.Bytes()), w.c.DefaultString*4)
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is not a finite number", ErrInvalid, w.at())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoreflect.Value{}, w.walk(v.Message())
	}
	return protoreflect.Value{}, nil
}

func (c Caps) stringCap(fd protoreflect.FieldDescriptor) int {
	if n, ok := c.Strings[fd.FullName()]; ok {
		return n
	}
	return c.DefaultString
}

func (c Caps) listCap(fd protoreflect.FieldDescriptor) int {
	if n, ok := c.Lists[fd.FullName()]; ok {
		return n
	}
	return c.DefaultList
}

// CleanString returns s as valid UTF-8 without terminal escape sequences
// (removed whole), other control characters (tabs and newlines become
// spaces) or bidirectional overrides, truncated to at most maxRunes runes
// with a trailing "…" when cut. It is what makes agent-reported text safe
// to store and to print on a technician's terminal.
func CleanString(s string, maxRunes int) string {
	clean := true
	n := 0
	for _, r := range s {
		n++
		if r == utf8.RuneError || unicode.IsControl(r) || IsBidiControl(r) {
			clean = false
		}
	}
	if clean && n <= maxRunes && utf8.ValidString(s) {
		return s
	}
	out := make([]rune, 0, min(n, maxRunes+1))
	for _, r := range stripEscapes(strings.ToValidUTF8(s, "\uFFFD")) {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case unicode.IsControl(r), IsBidiControl(r):
			continue
		}
		out = append(out, r)
		if len(out) > maxRunes {
			out = append(out[:maxRunes-1], '…')
			break
		}
	}
	return string(out)
}
