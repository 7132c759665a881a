package cli_test

import (
	"bytes"
	"context"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deskside/deskside/console/cli"
)

// mention is a `deskside …` command line named in a message or a hint.
type mention struct {
	where string // file:line
	text  string // what follows "deskside "
}

// TestNamedCommandsExist finds every `deskside …` command named in the
// string literals of the relay, the agent and the CLI, and anywhere in the
// web console's sources, and checks that the CLI has that command and its
// flags: an error message must name a next step that exists.
func TestNamedCommandsExist(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	var all []mention
	for _, dir := range []string{"relay", "agent", filepath.Join("console", "cli")} {
		all = append(all, goMentions(t, root, dir)...)
	}
	all = append(all, textMentions(t, root, filepath.Join("console", "web", "src"))...)

	checked := 0
	sawPolicy := false
	for _, m := range all {
		words, flags := splitMention(m.text)
		if len(words) == 0 {
			continue // a placeholder: "deskside <command> -h"
		}
		name, known, ok := resolve(words)
		if !ok {
			t.Errorf("%s: `deskside %s` names a command the CLI does not have", m.where, m.text)
			continue
		}
		for _, f := range flags {
			if !slices.Contains(known, f) {
				t.Errorf("%s: `deskside %s`: `deskside %s` has no flag -%s (it has %v)", m.where, m.text, name, f, known)
			}
		}
		checked++
		sawPolicy = sawPolicy || name == "devices policy"
	}
	t.Logf("%d commands named in messages and hints, all checked", checked)
	if checked < 20 || !sawPolicy {
		t.Errorf("found only %d mentions (devices policy among them: %v): is the scanner broken?", checked, sawPolicy)
	}
}

// goMentions scans the string literals of the non-test Go files under dir.
func goMentions(t *testing.T, root, dir string) []mention {
	t.Helper()
	var out []mention
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fset := token.NewFileSet()
		var s scanner.Scanner
		s.Init(fset.AddFile(rel, -1, len(src)), src, nil, 0)
		for {
			pos, tok, lit := s.Scan()
			if tok == token.EOF {
				break
			}
			if tok != token.STRING {
				continue
			}
			v, err := strconv.Unquote(lit)
			if err != nil {
				continue
			}
			for _, m := range findMentions(v) {
				out = append(out, mention{where: fset.Position(pos).String(), text: m})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// textMentions scans whole files (TypeScript, HTML) under dir, generated
// code aside.
func textMentions(t *testing.T, root, dir string) []mention {
	t.Helper()
	var out []mention
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "gen" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".ts") && !strings.HasSuffix(path, ".html") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range findMentions(line) {
				out = append(out, mention{where: rel + ":" + strconv.Itoa(i+1), text: m})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mentionRE finds "deskside " as a word (not "deskside-agent", not a path
// such as "cmd/deskside"); the mention runs to the end of the quoted or
// bracketed command line.
var mentionRE = regexp.MustCompile("(?:^|[^A-Za-z0-9_./-])deskside ([^`\"'(),;\n]*)")

// prose is text where "deskside" is a word in a sentence, not a command.
var prose = []string{"or ", "is the ", "exits "}

func findMentions(s string) []string {
	var out []string
	for _, m := range mentionRE.FindAllStringSubmatch(s, -1) {
		text := strings.TrimSpace(m[1])
		if text == "" || slices.ContainsFunc(prose, func(p string) bool { return strings.HasPrefix(text, p) }) {
			continue
		}
		if contextString.MatchString(text) {
			continue // a signing context ("deskside envelope v1"), not a command
		}
		out = append(out, text)
	}
	return out
}

var contextString = regexp.MustCompile(`^[a-z ]+ v[0-9]+$`)

var wordRE = regexp.MustCompile(`^[a-z][a-z-]*$`)

// splitMention returns the leading command words and the flags (names
// without dashes or values) of a mention, up to "--".
func splitMention(text string) (words, flags []string) {
	fields := strings.Fields(text)
	i := 0
	for ; i < len(fields) && wordRE.MatchString(fields[i]); i++ {
		words = append(words, fields[i])
	}
	for _, f := range fields[i:] {
		if f == "--" {
			break
		}
		if strings.HasPrefix(f, "-") && len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
			name = strings.TrimRight(name, ".:")
			flags = append(flags, name)
		}
	}
	return words, flags
}

// resolve finds the longest prefix of words that is a CLI command, from
// the command's own -h, and returns its name and flags.
func resolve(words []string) (name string, flags []string, ok bool) {
	for k := len(words); k > 0; k-- {
		name = strings.Join(words[:k], " ")
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), append(slices.Clone(words[:k]), "-h"), strings.NewReader(""), &stdout, &stderr,
			func(string) string { return "" })
		help := stderr.String()
		if code != 0 || !strings.HasPrefix(help, "Usage:\n  deskside "+name+" ") {
			continue // a group's list of commands, or no such command
		}
		flags = []string{"h", "help"}
		if _, f, found := strings.Cut(help, "\nFlags:\n"); found {
			for _, l := range strings.Split(f, "\n") {
				if rest, isFlag := strings.CutPrefix(l, "  -"); isFlag {
					flags = append(flags, strings.Fields(rest)[0])
				}
			}
		}
		return name, flags, true
	}
	return "", nil, false
}
