package cli

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestParseKeyArgWithLeadingDash: a key fingerprint is base64url and may
// start with "-"; parse takes it as an argument, unless a flag before it
// takes a value.
func TestParseKeyArgWithLeadingDash(t *testing.T) {
	fp := "-" + strings.Repeat("x", 42)
	for _, c := range []struct {
		args      []string
		pos       []string
		tech, fpf string
		all       bool
	}{
		{args: []string{fp}, pos: []string{fp}},
		{args: []string{"--technician", "alice", fp}, pos: []string{fp}, tech: "alice"},
		{args: []string{fp, "--all", "other"}, pos: []string{fp, "other"}, all: true},
		{args: []string{"--fingerprint", fp}, fpf: fp},
		{args: []string{"--all", fp}, pos: []string{fp}, all: true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		tech := fs.String("technician", "", "")
		fpf := fs.String("fingerprint", "", "")
		all := fs.Bool("all", false, "")
		pos, err := parse(fs, c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if !slices.Equal(pos, c.pos) || *tech != c.tech || *fpf != c.fpf || *all != c.all {
			t.Fatalf("%q: pos %q technician %q fingerprint %q all %v", c.args, pos, *tech, *fpf, *all)
		}
	}
}
