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
	return c.walk(m, string(m.Descriptor().Name()))
}

func (c Caps) walk(m protoreflect.Message, path string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			if limit := c.listCap(fd); l.Len() > limit {
				err = fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooLarge, p, l.Len(), limit)
				return false
			}
			for i := 0; i < l.Len(); i++ {
				nv, e := c.value(fd, l.Get(i), fmt.Sprintf("%s[%d]", p, i))
				if e != nil {
					err = e
					return false
				}
				if nv.IsValid() {
					l.Set(i, nv)
				}
			}
		case fd.IsMap():
			err = fmt.Errorf("%w: %s: maps are not accepted", ErrInvalid, p)
			return false
		default:
			nv, e := c.value(fd, v, p)
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
func (c Caps) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if ns := CleanString(s, c.stringCap(fd)); ns != s {
			return protoreflect.ValueOfString(ns), nil
		}
	case protoreflect.BytesKind:
		if len(v.Bytes()) > c.DefaultString*4 {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, path, len(v.Bytes()), c.DefaultString*4)
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is not a finite number", ErrInvalid, path)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoreflect.Value{}, c.walk(v.Message(), path)
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
