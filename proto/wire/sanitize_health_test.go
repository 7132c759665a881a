package wire

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// hostileLeaves lists, for every field the reflective walk checks under
// md (to depth 4), the path of fields that leads to it.
func hostileLeaves(p *plan, path []protoreflect.FieldDescriptor, out *[][]protoreflect.FieldDescriptor) {
	if len(path) > 4 {
		return
	}
	for i := range p.fields {
		f := &p.fields[i]
		here := append(append([]protoreflect.FieldDescriptor(nil), path...), f.fd)
		if f.list || f.isMap || f.sub == nil {
			*out = append(*out, here) // a list's cap, or a scalar's value
		}
		if f.sub != nil {
			hostileLeaves(f.sub, here, out)
		}
	}
}

// buildHostile makes a HealthReport with one hostile value at the end of
// path: every list on the way holds a harmless entry before the one
// followed, so the error's list indexes are not all 0.
func buildHostile(path []protoreflect.FieldDescriptor, overCap int, x float64) *desksidev1.HealthReport {
	root := &desksidev1.HealthReport{}
	m := root.ProtoReflect()
	for _, fd := range path[:len(path)-1] {
		if fd.IsList() {
			l := m.Mutable(fd).List()
			l.Append(l.NewElement())
			m = l.AppendMutable().Message()
		} else {
			m = m.Mutable(fd).Message()
		}
	}
	leaf := path[len(path)-1]
	long := "\x1b]0;pwned\x07\u202e" + strings.Repeat("é\t", 700)
	switch {
	case leaf.IsList():
		l := m.Mutable(leaf).List()
		for range overCap {
			switch leaf.Kind() {
			case protoreflect.MessageKind:
				l.Append(l.NewElement())
			case protoreflect.StringKind:
				l.Append(protoreflect.ValueOfString(long))
			case protoreflect.DoubleKind, protoreflect.FloatKind:
				l.Append(protoreflect.ValueOfFloat64(x))
			default:
				l.Append(l.NewElement())
			}
		}
	case leaf.Kind() == protoreflect.StringKind:
		m.Set(leaf, protoreflect.ValueOfString(long))
	case leaf.Kind() == protoreflect.BytesKind:
		m.Set(leaf, protoreflect.ValueOfBytes([]byte(long+long)))
	case leaf.Kind() == protoreflect.DoubleKind:
		m.Set(leaf, protoreflect.ValueOfFloat64(x))
	case leaf.Kind() == protoreflect.FloatKind:
		m.Set(leaf, protoreflect.ValueOfFloat32(float32(x)))
	}
	return root
}

// TestSanitizeHealthMatchesWalk holds Sanitize's HealthReport path (no
// reflection) to the reflective walk: for every field the walk checks, a
// report with a hostile value there (a long string with escapes, NaN,
// infinity, a list one entry over its cap, a list within it) comes out
// of both the same, error included. A string, float or list added to the
// health messages fails here until sanitize_health.go handles it.
func TestSanitizeHealthMatchesWalk(t *testing.T) {
	p := DefaultCaps.plan(healthReportDesc)
	if p.health == nil {
		t.Fatal("DefaultCaps has no HealthReport path")
	}
	var leaves [][]protoreflect.FieldDescriptor
	hostileLeaves(p, nil, &leaves)
	if len(leaves) < 15 {
		t.Fatalf("only %d fields to check under HealthReport", len(leaves))
	}
	check := func(name string, r *desksidev1.HealthReport) {
		t.Helper()
		fast, walked := proto.Clone(r).(*desksidev1.HealthReport), proto.Clone(r).(*desksidev1.HealthReport)
		errFast, errWalk := DefaultCaps.Sanitize(fast.ProtoReflect()), DefaultCaps.sanitizeByWalk(walked.ProtoReflect())
		switch {
		case (errFast == nil) != (errWalk == nil) || errFast != nil && errFast.Error() != errWalk.Error():
			t.Errorf("%s: Sanitize says %v, the walk %v", name, errFast, errWalk)
		case errFast == nil && !proto.Equal(fast, walked):
			t.Errorf("%s: Sanitize made\n%v\nthe walk\n%v", name, fast, walked)
		}
	}
	for _, path := range leaves {
		var names []string
		for _, fd := range path {
			names = append(names, string(fd.Name()))
		}
		name := strings.Join(names, ".")
		leaf := path[len(path)-1]
		if leaf.IsList() {
			limit := DefaultCaps.listCap(leaf)
			check(name+" at its cap", buildHostile(path, min(limit, 50), 1))
			check(name+" over its cap", buildHostile(path, limit+1, 1))
			continue
		}
		check(name, buildHostile(path, 0, 1))
		if k := leaf.Kind(); k == protoreflect.DoubleKind || k == protoreflect.FloatKind {
			check(name+" NaN", buildHostile(path, 0, math.NaN()))
			check(name+" -Inf", buildHostile(path, 0, math.Inf(-1)))
		}
	}
}

// FuzzSanitizeHealthMatchesWalk: any bytes that decode as a HealthReport
// come out of Sanitize's HealthReport path as out of the walk.
func FuzzSanitizeHealthMatchesWalk(f *testing.F) {
	var leaves [][]protoreflect.FieldDescriptor
	hostileLeaves(DefaultCaps.plan(healthReportDesc), nil, &leaves)
	for _, path := range leaves {
		b, _ := proto.Marshal(buildHostile(path, 2, math.Inf(1)))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r desksidev1.HealthReport
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		fast, walked := proto.Clone(&r).(*desksidev1.HealthReport), proto.Clone(&r).(*desksidev1.HealthReport)
		errFast, errWalk := DefaultCaps.Sanitize(fast.ProtoReflect()), DefaultCaps.sanitizeByWalk(walked.ProtoReflect())
		if (errFast == nil) != (errWalk == nil) || errFast != nil && errFast.Error() != errWalk.Error() {
			t.Fatalf("Sanitize says %v, the walk %v", errFast, errWalk)
		}
		if errFast == nil && !proto.Equal(fast, walked) {
			t.Fatalf("Sanitize made\n%v\nthe walk\n%v", fast, walked)
		}
	})
}
