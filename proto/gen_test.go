// Package proto_test checks that the committed generated code is exactly
// what `make proto` produces from the .proto files.
package proto_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestGeneratedCodeIsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping regeneration (builds buf)")
	}
	out := t.TempDir()
	// Same template, output redirected: buf generate -o writes the "gen"
	// tree under out.
	cmd := exec.Command("go", "tool", "buf", "generate", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buf generate: %v\n%s", err, b)
	}
	want := map[string][]byte{}
	filepath.WalkDir("gen", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			want[p], _ = os.ReadFile(p)
		}
		return err
	})
	got := map[string][]byte{}
	filepath.WalkDir(filepath.Join(out, "gen"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			got[rel], _ = os.ReadFile(p)
		}
		return err
	})
	if len(want) == 0 {
		t.Fatal("no committed generated code under proto/gen")
	}
	for p, b := range got {
		if !bytes.Equal(want[p], b) {
			t.Errorf("%s differs from a fresh generation: run `make proto` and commit", p)
		}
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("%s is committed but no longer generated: run `make proto`", p)
		}
	}
}
