// Package deptest checks what a program links: it lists a package's
// dependencies with `go list -deps` for a target GOOS and fails the test
// when one is forbidden. It keeps the dependencies one way (the agent and
// the CLI never link relay code; the agent never links the web console);
// its own test holds those rules for the Deskside binaries. Modelled on
// tailscale's tstest/deptest.
package deptest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Module is the import path of the Deskside module.
const Module = "github.com/deskside/deskside"

// Checker describes the dependency rules of one package.
type Checker struct {
	// Package is the package to check, as `go list` takes it ("./agent/cmd/deskside-agent").
	Package string
	// GOOS is the target system; empty means the host's.
	GOOS string
	// Forbidden maps an import path prefix to why it is forbidden. A prefix
	// matches the package itself and every package below it.
	Forbidden map[string]string
}

// Deps returns the import paths Package links for GOOS (standard library
// included, test-only imports excluded). dir is the module root.
func (c Checker) Deps(dir string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", c.Package)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if c.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+c.GOOS)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &ListError{Args: cmd.Args, Err: err, Stderr: stderr.String()}
	}
	return strings.Fields(string(out)), nil
}

// Violation is a forbidden dependency and why it is forbidden.
type Violation struct{ Dep, Why string }

// Violations returns the dependencies under a forbidden prefix.
func (c Checker) Violations(deps []string) []Violation {
	var bad []Violation
	for _, d := range deps {
		for prefix, why := range c.Forbidden {
			if d == prefix || strings.HasPrefix(d, prefix+"/") {
				bad = append(bad, Violation{d, why})
			}
		}
	}
	return bad
}

// Check fails t when Package links a forbidden package, or when a forbidden
// prefix inside this module names no directory (renamed or moved: update
// the rule).
func (c Checker) Check(t *testing.T) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for prefix := range c.Forbidden {
		if rel, ok := strings.CutPrefix(prefix, Module+"/"); ok {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
				t.Errorf("forbidden prefix %s names no directory (%v): update the rule", prefix, err)
			}
		}
	}
	deps, err := c.Deps(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s (GOOS=%s) listed nothing", c.Package, c.GOOS)
	}
	for _, v := range c.Violations(deps) {
		t.Errorf("%s (GOOS=%s) links %s: %s; find who imports it with: GOOS=%s go list -deps -f '{{.ImportPath}}: {{.Imports}}' %s | grep -E '[[ ]%s[] ]'",
			c.Package, c.GOOS, v.Dep, v.Why, c.GOOS, c.Package, v.Dep)
	}
	t.Logf("%s (GOOS=%s): %d dependencies", c.Package, c.GOOS, len(deps))
}

// ModuleRoot returns the directory of the main module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", &ListError{Args: []string{"go", "env", "GOMOD"}, Err: err}
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", &ListError{Args: []string{"go", "env", "GOMOD"}, Err: errNoModule}
	}
	return filepath.Dir(mod), nil
}
