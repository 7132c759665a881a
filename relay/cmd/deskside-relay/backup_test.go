package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/backup"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// TestBackupCommandPostgres backs up a running relay whose database is
// PostgreSQL: the archive holds the CA and keys but no database, the
// command says so and prints the pg_dump command, and that command, run,
// dumps the relay's tables. Restoring the archive names the pg_restore
// step.
func TestBackupCommandPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	r := servertest.Start(t, servertest.Options{Database: dsn})
	r.Enroll(t, "pg-backup-host")

	out := filepath.Join(t.TempDir(), "pg.tar.gz")
	var stdout, stderr bytes.Buffer
	if rc := backupCommand(t.Context(), []string{"--data", r.Dir, "--database", dsn, "--out", out}, &stdout, &stderr); rc != 0 {
		t.Fatalf("backup: exit %d: %s", rc, stderr.String())
	}
	t.Log(stdout.String())
	for _, want := range []string{"DATABASE IS NOT IN THIS ARCHIVE", "pg_dump --format=custom", "pg_restore --clean", "ca-key.pem", "audit.key"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("backup output lacks %q", want)
		}
	}
	if strings.Contains(stdout.String(), "deskside.db") {
		t.Error("a PostgreSQL relay's archive lists deskside.db")
	}

	// The printed command works: run it (to another file name).
	bin, err := exec.LookPath("pg_dump")
	testkit.Need(t, "pg_dump", err, "install the Debian package postgresql-client")
	dumpFile := filepath.Join(t.TempDir(), "relay.pgdump")
	dump, _ := backup.PostgresCommands(dsn, dumpFile)
	if b, err := exec.Command(bin, dump[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", backup.ShellQuote(dump), err, b)
	}
	list, err := exec.Command(filepath.Join(filepath.Dir(bin), "pg_restore"), "--list", dumpFile).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore --list: %v\n%s", err, list)
	}
	if !strings.Contains(string(list), "TABLE DATA") || !strings.Contains(string(list), " devices ") {
		t.Errorf("the dump holds no devices table:\n%s", list)
	}

	stdout.Reset()
	dir := filepath.Join(t.TempDir(), "restored")
	if rc := restoreCommand(t.Context(), []string{out, "--data", dir}, &stdout, &stderr); rc != 0 {
		t.Fatalf("restore: exit %d: %s", rc, stderr.String())
	}
	if !strings.Contains(stdout.String(), "pg_restore") {
		t.Errorf("restore output does not name pg_restore:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Error(err)
	}
}

// TestRestoreCommandArguments checks the restore command's argument
// handling: the archive before or after the flags, and the errors a person
// sees.
func TestRestoreCommandArguments(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	var stdout, stderr bytes.Buffer
	if rc := backupCommand(t.Context(), []string{"--data", r.Dir, "--out", out}, &stdout, &stderr); rc != 0 {
		t.Fatalf("backup: exit %d: %s", rc, stderr.String())
	}
	if !strings.Contains(stdout.String(), "NOT encrypted") {
		t.Errorf("backup output does not say the archive is not encrypted:\n%s", stdout.String())
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		rc   int
		want string
	}{
		{"no data dir", []string{out}, 2, "usage"},
		{"archive last", []string{"--data", filepath.Join(dir, "a"), out}, 0, "Restored 6 files"},
		{"archive first", []string{out, "--data", filepath.Join(dir, "b")}, 0, "Restored 6 files"},
		{"not empty", []string{out, "--data", filepath.Join(dir, "b")}, 1, "--force"},
		{"forced", []string{out, "--data", filepath.Join(dir, "b"), "--force"}, 0, "Restored 6 files"},
		{"missing archive", []string{filepath.Join(dir, "nope.tar.gz"), "--data", filepath.Join(dir, "c")}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			rc := restoreCommand(t.Context(), tc.args, &stdout, &stderr)
			if rc != tc.rc || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", rc, tc.rc, tc.want, stdout.String(), stderr.String())
			}
		})
	}
}
