package proto_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every package in the repository has a doc comment (tailscale's
// pkgdoc_test does the same).
func TestEveryPackageHasADocComment(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if dir != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || dir == filepath.Join(root, "proto", "gen") || name == "node_modules") {
			return filepath.SkipDir
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		documented := map[string]bool{} // package name → has a doc comment
		fset := token.NewFileSet()
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			documented[af.Name.Name] = documented[af.Name.Name] || af.Doc != nil
		}
		for pname, ok := range documented {
			if !ok {
				t.Errorf("package %s in %s has no doc comment", pname, dir)
			}
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
