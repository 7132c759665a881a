package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// KnownSchemaVersion is the schema version this binary migrates a database
// to; a database at a higher version is refused (ErrSchemaTooNew).
func KnownSchemaVersion() int { return latestVersion() }

// Snapshot writes a consistent copy of the SQLite database at src to dst
// with VACUUM INTO, while other connections and processes (a running
// relay) keep reading and writing src: the copy is taken in one read
// transaction, so it holds exactly the transactions committed when that
// transaction began, and in WAL mode it neither waits for nor blocks the
// writer. dst must not exist. Snapshot neither creates src nor migrates it;
// it returns the copy's schema version.
func Snapshot(ctx context.Context, src, dst string) (int, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("sqlite: snapshot: %w", err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("sqlite: snapshot: %s already exists", dst)
	}
	db, err := openExisting(src, false)
	if err != nil {
		return 0, fmt.Errorf("sqlite: snapshot %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		os.Remove(dst)
		return 0, fmt.Errorf("sqlite: snapshot %s: %w", src, err)
	}
	v, err := FileSchemaVersion(ctx, dst)
	if err != nil {
		os.Remove(dst)
		return 0, err
	}
	return v, nil
}

// FileSchemaVersion checks the database file at path (PRAGMA quick_check)
// and returns its schema version, without migrating or otherwise changing
// it: what a restore reads before it lets a relay open the file.
func FileSchemaVersion(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	db, err := openExisting(path, true)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if res != "ok" {
		return 0, fmt.Errorf("sqlite: %s is damaged: %s", path, res)
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, fmt.Errorf("sqlite: %s is not a Deskside database (no schema_migrations)", path)
		}
		return 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return v, nil
}

// openExisting opens one connection to an existing database file without
// the store's migrations. When readOnly it is query-only and read-only at
// the file level (for a file nobody else uses, such as a snapshot); else
// it may write, which VACUUM INTO needs (SQLite's query_only refuses it),
// and its callers only read.
func openExisting(path string, readOnly bool) (*sql.DB, error) {
	if strings.ContainsRune(path, '?') {
		return nil, errors.New("path must not contain '?'")
	}
	q := url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())}}
	dsn := path
	if readOnly {
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath()
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(ON)")
	}
	db, err := sql.Open("sqlite", dsn+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
