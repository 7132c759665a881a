package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deskside/deskside/relay/store"
)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer binary than this one: its schema may hold data this binary would
// misread or destroy, so it is not used.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this binary supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]store.Migration, error) { return store.LoadMigrations(migrationFiles) }

// migrateLockClass is the first key of the advisory lock that serializes
// migrations; the second is a hash of the schema's name, so relays sharing
// a schema wait for each other and different schemas do not.
const migrateLockClass = 0x64736b // "dsk"

// lockKey is the advisory lock's second key for a schema: its name's
// 32-bit FNV-1a hash.
func lockKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int32(h.Sum32())
}

// migrate applies the pending migrations under a session advisory lock on
// one connection, each migration in its own transaction together with its
// schema_migrations row. Relays starting at once against one database thus
// apply each migration once, and one that finds the schema up to date
// applies nothing. A failed migration rolls back whole (PostgreSQL's DDL is
// transactional).
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&schema); err != nil {
		conn.Release()
		return fmt.Errorf("migrate: %w", err)
	}
	if schema == "" {
		conn.Release()
		return errors.New("migrate: no schema to create tables in: search_path names no existing schema")
	}
	key := lockKey(schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, migrateLockClass, key); err != nil {
		// Whether the lock was taken is unknown (a cancelled wait, say):
		// end the session, which releases it, rather than pool it.
		conn.Hijack().Close(context.WithoutCancel(ctx))
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// Unlock with a fresh context: ctx may be what ended the work.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, migrateLockClass, key); uerr != nil {
			// A connection that may still hold the lock must not go
			// back to the pool: closing it ends the session and so
			// releases the lock.
			conn.Hijack().Close(uctx)
			if err == nil {
				err = fmt.Errorf("migrate: unlock: %w", uerr)
			}
			return
		}
		conn.Release()
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer NOT NULL PRIMARY KEY,
		name       text    NOT NULL,
		applied_at bigint  NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: schema %q is at version %d, this binary knows up to %d; upgrade deskside or restore a backup",
			ErrSchemaTooNew, schema, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// The simple protocol runs the file's statements as one
			// multi-statement query.
			if _, err := tx.Exec(ctx, m.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	return nil
}
