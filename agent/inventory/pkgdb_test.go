package inventory

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestParseDpkgStatus(t *testing.T) {
	f, err := os.Open("testdata/dpkg_status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseDpkgStatus(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"after-whitespace-line 0.1",
		"bash 5.2.15-2+b7",
		"crlf-package 9.9",
		"held-package 3:1.2.3~rc1-4ubuntu0.1",
		"libc6:amd64 2.36-9+deb12u4",
		"libc6:i386 2.36-9+deb12u4",
		"lower-case-keys 1.0",
		"no-version ",
		"unterminated 1",
	}
	if g := softwareStrings(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("parsed:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range got {
		if s.Source != SourceDpkg {
			t.Errorf("%s: source %q", s.Name, s.Source)
		}
	}
}

func TestParseDpkgStatusEdgeCases(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"only blank lines", "\n\n  \n\t\n", nil},
		{"no status", "Package: a\nVersion: 1\n", nil},
		{"status before package", "Status: install ok installed\nPackage: a\nVersion: 1\n", []string{"a 1"}},
		{"NUL and control bytes", "Package: a\x00b\x01c\nStatus: install ok installed\nVersion: 1\x00\n", []string{"abc 1"}},
		{"invalid UTF-8", "Package: a\xffb\nStatus: install ok installed\n", []string{"a\uFFFDb "}},
		{"bad status", "Package: a\nStatus: installed\n", nil},
		{"line without colon", "Package: a\ngarbage\nStatus: install ok installed\n", []string{"a "}},
		{"colon first", ": x\nPackage: a\nStatus: install ok installed\n", []string{"a "}},
		{"duplicate stanza", "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nVersion: 1\n", []string{"a 1"}},
		{"huge line", "Package: a\nDescription: " + strings.Repeat("x", 3*maxLineBytes) + "\nStatus: install ok installed\nVersion: 2\n", []string{"a 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDpkgStatus(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if g := softwareStrings(got); strings.Join(g, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

func TestParseRPMList(t *testing.T) {
	in := "zlib\t1.2.13-5.fc39\nbash\t5.2.26-1.fc39\ngpg-pubkey\t18b8e74c-62f2920f\n\nkernel\t6.8.9-200.fc39\nkernel\t6.8.9-200.fc39\nnoversion\n"
	got, err := parseRPMList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bash 5.2.26-1.fc39", "kernel 6.8.9-200.fc39", "noversion ", "zlib 1.2.13-5.fc39"}
	if g := softwareStrings(got); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", g, want)
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	if b, err := os.ReadFile("testdata/dpkg_status"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseDpkgStatus(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("error on in-memory input: %v", err)
		}
		seen := map[string]bool{}
		for i, s := range got {
			if s.Name == "" {
				t.Fatalf("entry %d has no name", i)
			}
			for _, v := range []string{s.Name, s.Version} {
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) || len(v) > 2*maxStringBytes+1 {
					t.Fatalf("unsafe string %q", v)
				}
				if v != strings.TrimSpace(v) {
					t.Fatalf("untrimmed string %q", v)
				}
			}
			if i > 0 && softwareLess(s, got[i-1]) {
				t.Fatalf("not sorted at %d: %q after %q", i, s.Name, got[i-1].Name)
			}
			k := s.Name + "\x00" + s.Version
			if seen[k] {
				t.Fatalf("duplicate %q %q", s.Name, s.Version)
			}
			seen[k] = true
		}
	})
}

func softwareLess(a, b *desksidev1.Software) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Source != b.Source {
		return a.Source < b.Source
	}
	return a.Version < b.Version
}

func softwareStrings(s []*desksidev1.Software) []string {
	var out []string
	for _, p := range s {
		out = append(out, p.Name+" "+p.Version)
	}
	return out
}
