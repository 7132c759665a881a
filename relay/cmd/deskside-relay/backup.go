package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/deskside/deskside/internal/pemfile"
	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/backup"
	"github.com/deskside/deskside/relay/config"
	"github.com/deskside/deskside/relay/store/postgres"
)

// passphraseEnv holds a backup's passphrase when --passphrase-file is not
// given.
const passphraseEnv = "DESKSIDE_BACKUP_PASSPHRASE"

// isBackupCommand reports whether main should hand its arguments to
// backupMain.
func isBackupCommand(args []string) bool {
	return len(args) > 0 && (args[0] == "backup" || args[0] == "restore")
}

// backupMain runs `deskside-relay backup|restore ARGS` until it ends or
// is interrupted.
func backupMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args[0] == "backup" {
		return backupCommand(ctx, args[1:], os.Stdout, os.Stderr)
	}
	return restoreCommand(ctx, args[1:], os.Stdout, os.Stderr)
}

// readPassphrase reads the passphrase from file (its first line), else from
// the environment; "" when neither is set.
func readPassphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv(passphraseEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--passphrase-file: %w", err)
	}
	p, _, _ := strings.Cut(string(b), "\n")
	if p = strings.TrimRight(p, "\r"); p == "" {
		return "", fmt.Errorf("--passphrase-file %s: the first line is empty", file)
	}
	return p, nil
}

// backupCommand runs `deskside-relay backup`: an archive of the data
// directory and, on SQLite, a snapshot of the database, taken while the
// relay runs (docs/adr/0030-backup-and-restore.md).
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deskside-relay backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storage := config.StorageFlags(fs, os.LookupEnv, config.DefaultFile, true, true)
	out := fs.String("out", "", "archive to write (default deskside-backup-<time>.tar.gz, .tar.gz.age when encrypted, in the current directory); written with mode 0600")
	passFile := fs.String("passphrase-file", "", "file whose first line is the passphrase to encrypt the archive with (age, scrypt); else env "+passphraseEnv+"; neither: not encrypted")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: deskside-relay backup [--config FILE] [--data DIR] [--database URL] [--out FILE] [--passphrase-file FILE]")
		fmt.Fprintln(stderr, "With PostgreSQL (--database) the database is not in the archive: back it up with pg_dump; the command prints how.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deskside-relay backup: unexpected argument %q (the archive's name goes after --out)\n", fs.Arg(0))
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "deskside-relay backup:", err); return 1 }
	st, err := storage()
	if err != nil {
		return fail(err)
	}
	dir, database, auditKey := &st.Data, &st.Database, &st.AuditKey
	pass, err := readPassphrase(*passFile)
	if err != nil {
		return fail(err)
	}
	now := time.Now().UTC()
	if *out == "" {
		*out = "deskside-backup-" + now.Format("20060102T150405Z") + ".tar.gz"
		if pass != "" {
			*out += ".age"
		}
	}
	res, err := backup.Create(ctx, backup.Options{
		DataDir: *dir, AuditKeyFile: *auditKey, Database: *database, Output: *out, Passphrase: pass,
		RelayVersion: version, Now: func() time.Time { return now },
	})
	if err != nil {
		return fail(err)
	}
	m := res.Manifest
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	enc := "encrypted with the passphrase"
	if !res.Encrypted {
		enc = "NOT encrypted"
	}
	fmt.Fprintf(stdout, "Wrote %s (%d bytes, %s): %s.\n", res.Path, res.Size, enc, strings.Join(names, ", "))
	if m.Database == backup.DatabaseSQLite {
		fmt.Fprintf(stdout, "The database is a consistent snapshot (schema version %d) taken at %s; what the relay stores after that is not in it.\n",
			m.SchemaVersion, m.CreatedAt.Format(time.RFC3339))
	}
	if !res.Encrypted {
		fmt.Fprintln(stdout, "It holds the CA key and the audit key in the clear: keep it as secret as the data directory, or encrypt it with --passphrase-file.")
	}
	if m.Database == backup.DatabasePostgres {
		dumpFile := "deskside-" + now.Format("20060102T150405Z") + ".pgdump"
		dump, restore := backup.PostgresCommands(*database, dumpFile)
		fmt.Fprintf(stdout, "\nThe DATABASE IS NOT IN THIS ARCHIVE: this relay uses PostgreSQL (%s), which is backed up with its own tools. Back it up now, while the relay runs (the password from PGPASSWORD or ~/.pgpass):\n\n  %s\n\n",
			postgres.Redact(*database), backup.ShellQuote(dump))
		fmt.Fprintf(stdout, "and keep the dump with the archive. To restore, load it into the database before starting a relay on the restored files:\n\n  %s\n", backup.ShellQuote(restore))
	}
	return 0
}

// restoreCommand runs `deskside-relay restore ARCHIVE --data DIR`.
func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deskside-relay restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory to restore into: empty or new (required)")
	force := fs.Bool("force", false, "restore into a data directory that holds files, replacing those the archive holds (stop its relay first)")
	passFile := fs.String("passphrase-file", "", "file whose first line is the archive's passphrase; else env "+passphraseEnv)
	usage := "usage: deskside-relay restore ARCHIVE --data DIR [--force] [--passphrase-file FILE]"
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	// The archive may come before or after the flags.
	var archive string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		archive, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if archive == "" && fs.NArg() > 0 {
		archive = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if archive == "" || *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "deskside-relay restore:", err); return 1 }
	pass, err := readPassphrase(*passFile)
	if err != nil {
		return fail(err)
	}
	m, err := backup.Restore(ctx, backup.RestoreOptions{Archive: archive, DataDir: *dir, Force: *force, Passphrase: pass})
	if err != nil {
		return fail(err)
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(stdout, "Restored %d files into %s from the backup of %s (relay %s", len(m.Files), abs, m.CreatedAt.Format(time.RFC3339), m.RelayVersion)
	if m.Database == backup.DatabaseSQLite {
		fmt.Fprintf(stdout, ", SQLite schema version %d", m.SchemaVersion)
	}
	fmt.Fprintln(stdout, ").")
	fmt.Fprintln(stdout, "\nNext:")
	step := 1
	if m.Database == backup.DatabasePostgres {
		fmt.Fprintf(stdout, "  %d. The database is not in the archive: restore the relay's PostgreSQL database from its pg_dump (pg_restore --clean --if-exists --no-owner --dbname=URL FILE), then start the relay with --database URL.\n", step)
		step++
	}
	if m.AuditKeyFrom != "" {
		fmt.Fprintf(stdout, "  %d. The audit key was at %s (--audit-key); it is restored as %s: move it there or start the relay with --audit-key %s.\n",
			step, m.AuditKeyFrom, filepath.Join(abs, audit.KeyFile), filepath.Join(abs, audit.KeyFile))
		step++
	}
	where := "the name and port agents were enrolled with"
	if c, err := pemfile.ReadCertificate(filepath.Join(abs, "server.pem")); err == nil { // relay/pki's server certificate
		var names []string
		names = append(names, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		where += " (the server certificate names " + strings.Join(names, ", ") + "; add others with --name)"
	}
	fmt.Fprintf(stdout, "  %d. Start the relay with --data %s, reachable at %s. Agents reconnect by themselves with their certificates: no re-enrollment.\n", step, abs, where)
	step++
	fmt.Fprintf(stdout, "  %d. Health samples the old relay received after the backup was taken are not restored, and an agent whose certificate was renewed after it is refused (\"no longer current\"): re-enroll such an agent with a new token.\n", step)
	return 0
}
