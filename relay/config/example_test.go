package config

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exampleFile is the example committed for packagers and readers.
const exampleFile = "../../docs/relay.yaml.example"

// TestExampleIsCurrent: docs/relay.yaml.example is what `config example`
// prints, so the documentation follows the table of keys.
func TestExampleIsCurrent(t *testing.T) {
	var b strings.Builder
	if err := Example(&b); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(exampleFile)
	if err != nil || string(got) != b.String() {
		t.Errorf("%s is not current (%v): run `go run ./relay/cmd/deskside-relay config example > docs/relay.yaml.example`", exampleFile, err)
	}
}

// setting matches a commented-out key in the example.
var setting = regexp.MustCompile(`(?m)^#([a-z_]+): `)

// TestExampleRoundTrip: the example as shipped loads to the defaults, and
// so does the example with every key uncommented: each key is listed once,
// with its default written so that it parses back to itself.
func TestExampleRoundTrip(t *testing.T) {
	var b strings.Builder
	if err := Example(&b); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, m := range setting.FindAllStringSubmatch(b.String(), -1) {
		listed[m[1]]++
	}
	for _, k := range Keys {
		if listed[k.Name] != 1 {
			t.Errorf("%s is listed %d times in the example, want once", k.Name, listed[k.Name])
		}
		delete(listed, k.Name)
	}
	if len(listed) > 0 {
		t.Errorf("the example lists keys that are not in the table: %v", listed)
	}

	for name, text := range map[string]string{
		"commented":   b.String(),
		"uncommented": setting.ReplaceAllString(b.String(), "$1: "),
	} {
		p := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Options{Args: []string{"--config", p}})
		if err != nil {
			t.Fatalf("%s example: %v", name, err)
		}
		want := Default
		if name == "uncommented" {
			want = File
		}
		for _, k := range Keys {
			s := c.Get(k.Name)
			if s.Source != want || !reflect.DeepEqual(s.Value, k.Default) {
				t.Errorf("%s example: %s = %#v from %v, want the default %#v from %v", name, k.Name, s.Value, s.Source, k.Default, want)
			}
		}
	}
}

// TestKeysTable: every key is documented, grouped, and named the one way
// (snake_case, DESKSIDE_ in the environment, dashes in flags), and the
// flags do not collide.
func TestKeysTable(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	flags := map[string]bool{"config": true, "version": true}
	for _, k := range Keys {
		if !snake.MatchString(k.Name) || k.Usage == "" || k.Group == "" || k.apply == nil || k.Env != "DESKSIDE_"+strings.ToUpper(k.Name) {
			t.Errorf("key %+v", k)
		}
		if k.Flag != "" {
			if flags[k.Flag] {
				t.Errorf("flag --%s twice", k.Flag)
			}
			flags[k.Flag] = true
		}
		if k.Secret && k.Flag != "" && k.Name != "database" {
			t.Errorf("secret %s has a flag: a command line is visible to every user", k.Name)
		}
	}
}

// TestExampleWith: the keys set are written out and load from the file
// with their values; the rest stay the example's; a key that does not
// exist or a value of the wrong type is refused.
func TestExampleWith(t *testing.T) {
	var plain, b strings.Builder
	if err := Example(&plain); err != nil {
		t.Fatal(err)
	}
	set := map[string]any{"data": "/srv/relay", "names": []string{"a.example"}, "health_retention": 48 * time.Hour}
	if err := ExampleWith(&b, set); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != strings.Count(plain.String(), "\n") || !strings.Contains(b.String(), "\ndata: \"/srv/relay\"\n") {
		t.Errorf("ExampleWith changed the example's lines:\n%s", b.String())
	}
	p := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Args: []string{"--config", p}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys {
		s := c.Get(k.Name)
		want, src := k.Default, Default
		if v, ok := set[k.Name]; ok {
			want, src = v, File
		}
		if s.Source != src || !reflect.DeepEqual(s.Value, want) {
			t.Errorf("%s = %#v from %v, want %#v from %v", k.Name, s.Value, s.Source, want, src)
		}
	}
	for _, bad := range []map[string]any{{"dta": "/srv"}, {"data": 3}, {"health_retention": "48h"}} {
		if err := ExampleWith(io.Discard, bad); err == nil || !strings.Contains(err.Error(), "config.ExampleWith") {
			t.Errorf("ExampleWith(%v) = %v, want an error", bad, err)
		}
	}
}
