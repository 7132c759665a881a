package msi

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Table is one table of an MSI as `msiinfo export` prints it.
type Table struct {
	Name    string
	Columns []string
	Rows    []map[string]string // column name → value ("" for null)
}

// Find returns the rows whose column col holds value.
func (t Table) Find(col, value string) []map[string]string {
	var out []map[string]string
	for _, r := range t.Rows {
		if r[col] == value {
			out = append(out, r)
		}
	}
	return out
}

// ParseTable parses the IDT text `msiinfo export` prints: a line of
// column names, a line of column types, a line naming the table and its
// key columns, then one tab-separated row per line.
func ParseTable(text string) (Table, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) < 3 {
		return Table{}, fmt.Errorf("msi table: %d lines, want at least the 3 header lines of msiinfo export", len(lines))
	}
	cols := strings.Split(lines[0], "\t")
	types := strings.Split(lines[1], "\t")
	head := strings.Split(lines[2], "\t")
	if len(types) != len(cols) || head[0] == "" {
		return Table{}, fmt.Errorf("msi table: malformed header (%d columns, %d types, table %q)", len(cols), len(types), head[0])
	}
	t := Table{Name: head[0], Columns: cols}
	for i, l := range lines[3:] {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != len(cols) {
			return Table{}, fmt.Errorf("msi table %s: row %d has %d fields, want %d", t.Name, i+1, len(f), len(cols))
		}
		row := make(map[string]string, len(cols))
		for j, c := range cols {
			row[c] = f[j]
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// ExportTable reads one table of the MSI at path with `msiinfo export`.
func ExportTable(ctx context.Context, path, table string) (Table, error) {
	if err := needTools("msiinfo"); err != nil {
		return Table{}, err
	}
	out, err := exec.CommandContext(ctx, "msiinfo", "export", path, table).Output()
	if err != nil {
		return Table{}, fmt.Errorf("msiinfo export %s %s: %w%s", path, table, err, stderrOf(err))
	}
	return ParseTable(string(out))
}

// needTools checks that every tool is on $PATH.
func needTools(tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w (%s not found)", ErrToolMissing, tool)
		}
	}
	return nil
}

// stderrOf is ": " and what a failed command printed on stderr, if any.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
