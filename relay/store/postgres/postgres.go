// Package postgres is the relay's PostgreSQL store.Store backend, for
// relays that scale out: several relays share one database. It uses
// github.com/jackc/pgx/v5 through a pgxpool connection pool.
//
// # Connections
//
// Open takes a pgx connection string, a URL
// (postgres://user:pass@host:5432/db?sslmode=verify-full) or keyword/value
// form (host=… dbname=…); pool_max_conns and the other pgxpool settings
// may be given in it, and the password may instead come from PGPASSWORD or
// a .pgpass file. Without a positive connect_timeout (or
// PGCONNECT_TIMEOUT), connecting gives up after DefaultConnectTimeout, so an
// unreachable server is an error, never a hang. Open connects once before returning, so a bad address or password
// fails at start rather than on the first request. The schema is the first
// one on search_path (set search_path=… in the connection string to use
// another than public).
//
// # Schema
//
// The schema lives in numbered files under migrations/ (0001_init.sql,
// 0002_….sql), embedded in the binary and applied in order at Open, each in
// its own transaction together with its row in schema_migrations. Relays
// starting at once against one database take a session advisory lock
// (pg_advisory_lock, keyed by the schema's name) around migrating, so each
// migration is applied exactly once and nobody uses a half-migrated schema.
// A database migrated by a newer binary is refused with ErrSchemaTooNew.
//
// # Values
//
// Every time is a bigint of Unix nanoseconds in UTC, as in the SQLite
// backend: timestamptz has only microseconds, and the suite (and the audit
// hash, which covers the time) needs exact round trips. The zero time.Time
// is stored as 0 and read back as the zero time; consequently the instant
// 1970-01-01T00:00:00Z itself also reads back as the zero time, and times
// outside the years 1678–2262 are not representable. Times are returned in
// UTC.
//
// uint64 values (byte counts, sample ids) are the domain uint64, a
// numeric(20,0) checked to 0..2^64-1, so values above MaxInt64 are stored,
// compared, sorted and summed as what they are; health buckets keep exact
// numeric sums of byte counts.
//
// PostgreSQL text cannot hold NUL (nor invalid UTF-8). The free-form
// strings that are never searched, the audit log's and the inventory
// history's, are therefore bytea holding the string's exact bytes: the audit
// log takes any event and its hash verifies from what is read back. Strings
// in text columns (device and technician fields, ids) are refused with
// PostgreSQL's "invalid byte sequence" error, never stored altered.
//
// Text columns are COLLATE "C". Device lists order text by lower(col), which
// under "C" folds ASCII letters only and compares bytes, exactly as the
// conformance suite and SQLite's NOCASE do, with the id (byte order) as
// tie-break; each ordering has an index on its expression. The substring
// filters are ILIKE with '%', '_' and '\' escaped (again ASCII folding
// under "C"). The free-space filter compares free*100 < percent*(used+free) in
// double precision, as the SQLite backend does, so the backends agree on
// the edges.
//
// # Concurrency
//
// Several relays may use one database at once; every operation is safe
// against the others, whichever relay runs them:
//
//   - ConsumeEnrollToken reads the token with SELECT … FOR UPDATE and
//     decrements it in the same transaction, so concurrent enrollments on
//     any relays use a token with n uses exactly n times.
//   - AppendAudit takes LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE
//     (self-conflicting, but not blocking readers) before reading the last
//     event, so appends are serialized and the chain cannot fork. The
//     schema backs this up: seq is the primary key and prev_hash is unique,
//     so a second successor of one event could not be stored.
//   - AddHealthSamples inserts a batch in one statement that also reads the
//     device row FOR KEY SHARE; health_raw has no foreign key, whose
//     per-row check cost a third of the ingest rate.
//   - CompactHealth deletes the raw samples it folds and adds them to their
//     buckets in one statement (a data-modifying CTE), so a sample is
//     folded exactly once even if two relays compact at the same time or
//     a late sample arrives meanwhile.
//   - TakeQueuedCommands is one DELETE … RETURNING: two relays never hand
//     out the same command.
//   - ListDevices reads the count and the page in one REPEATABLE READ,
//     READ ONLY transaction, so they agree.
//
// Transactions that fail with a serialization failure or a deadlock are
// retried a few times.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deskside/deskside/relay/store"
)

var _ store.Store = (*Store)(nil)

// DefaultConnectTimeout bounds connecting to the server when the connection
// string sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// Store is a store.Store backed by a PostgreSQL database. It is safe for
// concurrent use, and several Stores (in one process or in several relays)
// may share a database.
type Store struct {
	pool *pgxpool.Pool

	kbCommon kbCommonLexemes // see kb.go

	closeOnce sync.Once
}

// Open connects to the PostgreSQL database dsn names, brings its schema up
// to date and returns a Store. Errors name the server with the password
// redacted. It fails with ErrSchemaTooNew if the database was migrated by a
// newer binary.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password it finds, but the error it wraps (from
		// url.Parse, say) may quote the whole string: scrub the text and
		// do not wrap it.
		return nil, fmt.Errorf("postgres: open %s: invalid connection string: %s", Redact(dsn), scrub(err.Error()))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Neither connect_timeout nor PGCONNECT_TIMEOUT (or "0", which
		// libpq takes as "wait forever"): never hang at start.
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "deskside-relay"
	}
	where := describe(cfg)

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s := &Store{pool: pool}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	// pgxpool connects lazily; connect now, bounded, so a bad address or
	// password fails here.
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+5*time.Second)
	err = pool.Ping(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: connect: %w", where, err)
	}
	if err := migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	ok = true
	return s, nil
}

// Close closes the connection pool, waiting for connections in use to be
// returned. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// describe names the database cfg connects to, without secrets, for errors.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

var (
	urlPassword     = regexp.MustCompile(`(://[^:/@\s]*:)[^\s/]*@`)
	keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// scrub masks anything that looks like a password in s: the password of
// a URL's user information and password=… settings.
func scrub(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return keywordPassword.ReplaceAllString(s, "${1}xxxxx")
}

// Redact returns dsn with any password replaced by "xxxxx", for logs and
// error messages.
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			if q := u.Query(); q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
	}
	return scrub(dsn)
}

// maxAttempts is how often a transaction is tried when it keeps failing
// with a serialization failure or a deadlock.
const maxAttempts = 8

// retry runs fn, again after a short pause if it fails with a
// serialization failure or a deadlock, up to maxAttempts times in all. fn
// is a whole transaction (or one statement, which is one), and must reset
// anything it returns.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		// Back off a little, with jitter, so the contenders do not meet
		// again at once.
		d := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// tx runs fn in a transaction with opts and commits it if fn returns nil,
// retrying the whole transaction as retry does.
func (s *Store) tx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginTxFunc(ctx, s.pool, opts, fn) })
}

// write runs fn in a READ COMMITTED read-write transaction.
func (s *Store) write(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.tx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}, fn)
}

// snapshot runs fn in a REPEATABLE READ, READ ONLY transaction: all of its
// queries see one snapshot.
func (s *Store) snapshot(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.tx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// SQLSTATE codes this package handles.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique reports whether err is a PRIMARY KEY or UNIQUE violation.
func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool { return pgCode(err) == codeForeignKeyViolation }

func retryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// limitArg maps the store's "limit <= 0 means all" to LIMIT NULL.
func limitArg(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	l := int64(limit)
	return &l
}

// nonNil maps a nil slice to an empty one, so it binds as an empty bytea
// rather than NULL in NOT NULL columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
