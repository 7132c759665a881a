package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
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
//
// The fields to check in each message type are worked out once per Caps
// and type (a plan: only strings, bytes, floats, maps, lists and messages
// that hold any of these; integers, booleans and enums need nothing) and
// kept, so a Caps must not be changed in place after its first use.
func (c Caps) Sanitize(m protoreflect.Message) error {
	w := walker{root: m.Descriptor().Name(), path: make([]pathElem, 0, 8)}
	p := c.plan(m.Descriptor())
	if p.health != nil {
		if r, ok := m.Interface().(*desksidev1.HealthReport); ok {
			return w.health(r, p.health) // sanitize_health.go
		}
	}
	return w.walk(m, p)
}

// sanitizeByWalk is Sanitize without the HealthReport path, for the test
// that holds the two together.
func (c Caps) sanitizeByWalk(m protoreflect.Message) error {
	w := walker{root: m.Descriptor().Name(), path: make([]pathElem, 0, 8)}
	return w.walk(m, c.plan(m.Descriptor()))
}

// plan is what Sanitize checks in one message type.
type plan struct {
	fields []planField
	health *healthCaps // for a HealthReport: its caps, for the path without reflection
}

// planField is one field that may need a check.
type planField struct {
	fd      protoreflect.FieldDescriptor
	kind    protoreflect.Kind
	list    bool
	isMap   bool
	strCap  int
	listCap int
	sub     *plan // the element's plan, for message fields
}

// planKey names a plan: the message type and the Caps it was made for
// (the maps by identity).
type planKey struct {
	msg             protoreflect.FullName
	strings, lists  uintptr
	defStr, defList int
}

// plans holds the plans made so far, by planKey.
var plans sync.Map

// plan returns the plan for md under c, making it on first use.
func (c Caps) plan(md protoreflect.MessageDescriptor) *plan {
	key := planKey{msg: md.FullName(), strings: reflect.ValueOf(c.Strings).Pointer(), lists: reflect.ValueOf(c.Lists).Pointer(),
		defStr: c.DefaultString, defList: c.DefaultList}
	if p, ok := plans.Load(key); ok {
		return p.(*plan)
	}
	p := c.makePlan(md, map[protoreflect.FullName]*plan{})
	if md.FullName() == healthReportDesc.FullName() {
		p.health = c.healthCaps()
	}
	plans.Store(key, p)
	return p
}

// makePlan builds md's plan; seen holds the plans under construction, so
// a recursive type refers to itself.
func (c Caps) makePlan(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*plan) *plan {
	if p, ok := seen[md.FullName()]; ok {
		return p
	}
	p := &plan{}
	seen[md.FullName()] = p
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		f := planField{fd: fd, kind: fd.Kind(), list: fd.IsList(), isMap: fd.IsMap(), strCap: c.stringCap(fd), listCap: c.listCap(fd)}
		switch {
		case f.isMap:
		case f.kind == protoreflect.MessageKind || f.kind == protoreflect.GroupKind:
			f.sub = c.makePlan(fd.Message(), seen)
		case f.kind == protoreflect.StringKind, f.kind == protoreflect.BytesKind,
			f.kind == protoreflect.DoubleKind, f.kind == protoreflect.FloatKind:
		case !f.list:
			continue // an integer, a boolean or an enum: nothing to check
		}
		p.fields = append(p.fields, f)
	}
	return p
}

// walker is one Sanitize call. It keeps the path to the field being
// checked as a stack and spells it out only for an error: a report costs
// no string building.
type walker struct {
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

func (w *walker) walk(m protoreflect.Message, p *plan) error {
	for i := range p.fields {
		f := &p.fields[i]
		if f.kind == protoreflect.MessageKind && !f.list && len(f.sub.fields) == 0 {
			continue // nothing in it to check (a Timestamp)
		}
		if !m.Has(f.fd) {
			continue
		}
		w.path = append(w.path, pathElem{name: f.fd.Name(), index: -1})
		if err := w.field(m, f); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
	}
	return nil
}

// field checks one present field of m.
func (w *walker) field(m protoreflect.Message, f *planField) error {
	switch {
	case f.isMap:
		return fmt.Errorf("%w: %s: maps are not accepted", ErrInvalid, w.at())
	case f.list:
		l := m.Get(f.fd).List()
		if l.Len() > f.listCap {
			return fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooLarge, w.at(), l.Len(), f.listCap)
		}
		if f.sub != nil && len(f.sub.fields) == 0 {
			return nil // messages with nothing in them to check
		}
		for i := 0; i < l.Len(); i++ {
			w.path[len(w.path)-1].index = i
			nv, err := w.value(f, l.Get(i))
			if err != nil {
				return err
			}
			if nv.IsValid() {
				l.Set(i, nv)
			}
		}
	default:
		nv, err := w.value(f, m.Get(f.fd))
		if err != nil {
			return err
		}
		if nv.IsValid() {
			m.Set(f.fd, nv)
		}
	}
	return nil
}

// value checks one scalar or message value; it returns a replacement value
// (or an invalid Value when none is needed).
func (w *walker) value(f *planField, v protoreflect.Value) (protoreflect.Value, error) {
	switch f.kind {
	case protoreflect.StringKind:
		s := v.String()
		if ns := CleanString(s, f.strCap); ns != s {
			return protoreflect.ValueOfString(ns), nil
		}
	case protoreflect.BytesKind:
		if limit := f.strCap * 4; len(v.Bytes()) > limit {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, w.at(), len(v.Bytes()), limit)
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		x := v.Float()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return protoreflect.Value{}, fmt.Errorf("%w: %s is not a finite number", ErrInvalid, w.at())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoreflect.Value{}, w.walk(v.Message(), f.sub)
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
