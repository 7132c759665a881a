package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer binary than this one: its schema may hold data this binary would
// misread or destroy, so it is not used.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this binary supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]store.Migration, error) { return store.LoadMigrations(migrationFiles) }

// latestVersion is the schema version this binary migrates to.
func latestVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// schemaVersion returns the highest applied migration, 0 for a new database.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// migrate applies the pending migrations to db (the writer), each in its own
// IMMEDIATE transaction that also records it, so a crash leaves the schema
// at a whole version and two processes opening the same file at once apply
// each migration once.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cur, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade deskside or restore a backup", ErrSchemaTooNew, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m store.Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-check under the write lock: another process may have got here first.
	cur, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	switch {
	case cur >= m.Version:
		return nil
	case cur != m.Version-1:
		return fmt.Errorf("database is at version %d, cannot apply version %d", cur, m.Version)
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
