// Package sqlite is the relay's embedded, default store.Store backend,
// built on the pure-Go SQLite driver modernc.org/sqlite (no cgo).
//
// # Connections
//
// SQLite allows one writer at a time. Rather than let concurrent writers
// race for the lock and retry on SQLITE_BUSY, a Store holds two pools on
// the same file:
//
//   - a writer pool capped at exactly one connection, whose transactions
//     begin IMMEDIATE. database/sql queues callers for that connection, so
//     writes from this process are serialized in Go and never see
//     SQLITE_BUSY, and every read-modify-write (consuming an enrollment
//     token, appending to the audit chain) is atomic simply by running in
//     one write transaction;
//   - a reader pool of several query_only connections. The database runs in
//     WAL mode, so readers see the last committed state and neither block
//     nor are blocked by the writer. Multi-statement reads (a page of
//     devices and its total count) run in one read transaction and so see
//     one snapshot.
//
// Every connection sets busy_timeout (only another process, such as a
// backup tool, can still hold the lock), foreign_keys=ON, and the writer
// sets synchronous=NORMAL, which in WAL mode is durable against process
// crashes and loses at most the last transactions on power loss. Because the
// two pools are separate connections, in-memory databases are not
// supported: Open needs a file path.
//
// # Schema
//
// The schema lives in numbered files under migrations/ (0001_init.sql,
// 0002_….sql), embedded in the binary and applied in order at Open, each in
// its own transaction together with its row in schema_migrations. Reopening
// an up-to-date database applies nothing; a database whose schema is newer
// than this binary knows is refused with ErrSchemaTooNew rather than used.
//
// # Values
//
// Every time is stored as INTEGER Unix nanoseconds in UTC, so round trips
// are exact (and the audit hash, which covers the time, recomputes from what
// is read back). The zero time.Time is stored as 0 and read back as the zero
// time; consequently the instant 1970-01-01T00:00:00Z itself also reads back
// as the zero time, and times outside the years 1678–2262 are not
// representable. Times are returned in UTC. uint64 values (sample ids, byte
// counts) are stored bit-for-bit in signed INTEGER columns.
//
// Health buckets keep the number of samples folded in and the sum of each
// metric, so merging a later compaction into an existing bucket keeps the
// average exact.
//
// Device lists are ordered by DeviceFilter.Sort, hostname by default: text
// columns compared case-insensitively (ASCII case folding, SQLite's
// NOCASE), memory and free disk space as unsigned numbers, last seen oldest
// first (never seen before all), offline before online; then by id; and
// Descending reverses the whole order, tie-break included. The OS order is
// the display name, then the agent's OS. Every ordering has an index
// (migrations/0002_device_sort_indexes.sql, 0006_device_os.sql), so a page,
// at any Offset, is read in order rather than sorted, except that a page running
// to the end of a few matches is read by scanning and sorting them (see
// scanSortMax). The keyset paging key (AfterHostname, AfterID) belongs to
// hostname ascending, is compared the same way, and is refused with any
// other order.
//
// The substring filters (hostname; OS, over the agent's OS and the
// inventory's OS name, version, family and display name; user; model; and
// Query over those and the id) are case-insensitive (ASCII) matches in which '%', '_' and
// '\' match themselves. MemoryBelow and DiskFreeBelowPercent never match an
// unknown (zero) memory size or volume size; the free-space test is
// free*100 < percent*(used+free) in floating point (df's measure). An unknown Sort, a negative
// Offset and a negative or NaN DiskFreeBelowPercent are errors.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/deskside/deskside/relay/store"
)

var (
	_ store.Store         = (*Store)(nil)
	_ store.HealthBatcher = (*Store)(nil)
)

// busyTimeout bounds how long a statement waits for a lock held by another
// process. Writers in this process never wait on each other in SQLite.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // exactly one connection; all writes
	r *sql.DB // query_only connections; all reads

	kbWords kbWordCounts // see kb.go

	health healthStmts // see health.go

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the SQLite database at path, brings its
// schema up to date and returns a Store. It fails with ErrSchemaTooNew if the
// database was migrated by a newer binary.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: need a plain file path (in-memory and URI names are not supported)", path)
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: path must not contain '?'", path)
	}

	bt := fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds())
	writerQ := url.Values{
		"_pragma": {bt, "journal_mode(WAL)", "foreign_keys(ON)", "synchronous(NORMAL)"},
		"_txlock": {"immediate"},
	}
	readerQ := url.Values{
		"_pragma": {bt, "foreign_keys(ON)", "query_only(ON)"},
	}

	s := &Store{}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var err error
	if s.w, err = sql.Open("sqlite", path+"?"+writerQ.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("sqlite: open %q: journal mode is %q, want wal", path, mode)
	}
	if err := migrate(ctx, s.w); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := s.health.prepare(ctx, s.w); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}

	if s.r, err = sql.Open("sqlite", path+"?"+readerQ.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	if err := s.r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}

	ok = true
	return s, nil
}

// Close closes both connection pools. It is safe to call more than once;
// later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.health.close())
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// write runs fn in one IMMEDIATE transaction on the writer connection and
// commits it if fn returns nil. fn must not use s.w or s.r: the writer has a
// single connection, which fn's transaction already holds.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// read runs fn in one read transaction on the reader pool, so that all of
// its queries see the same snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// sqliteCode returns the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// isUnique reports whether err is a PRIMARY KEY or UNIQUE violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// limitArg maps the store's "limit <= 0 means all" to SQLite's LIMIT -1.
func limitArg(limit int) int64 {
	if limit <= 0 {
		return -1
	}
	return int64(limit)
}

// rowsAffected returns res.RowsAffected, or the error err if res is nil.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
