// Package pgtest gives tests their own PostgreSQL schema: a fresh schema
// with a random name on the test server, dropped when the test ends, and
// a connection string whose search_path selects it. Tests using it never
// see each other's tables, so they may run in parallel and in several
// packages at once against one database.
//
// The server is named by DESKSIDE_TEST_POSTGRES, by default DefaultDSN.
// When it cannot be reached the test is skipped, unless CI=true, when it
// fails: in CI a missing database is a broken setup, not a reason to pass
// (testkit.Need). Under -short the test is skipped (testkit.Heavy).
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/relay/store/postgres"
)

// DefaultDSN is the test server when DESKSIDE_TEST_POSTGRES is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN is the test server's connection string.
func BaseDSN() string { return cmp.Or(os.Getenv("DESKSIDE_TEST_POSTGRES"), DefaultDSN) }

// SchemaPrefix starts the name of every schema DSN creates.
const SchemaPrefix = "deskside_test_"

var (
	probeOnce sync.Once
	probeErr  error
)

// connect connects to the test server, giving up after a few seconds.
func connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(BaseDSN())
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// unreachable skips or fails t because the server cannot be used.
func unreachable(t testing.TB, err error) {
	t.Helper()
	testkit.Need(t, "PostgreSQL at "+postgres.Redact(BaseDSN()), err,
		"start one with a database named test that trusts local connections (Debian package postgresql) or set DESKSIDE_TEST_POSTGRES to its connection string")
}

// DSN creates a fresh schema for t, drops it (with everything in it) when
// t ends, and returns the test server's connection string with its
// search_path set to that schema. It skips or fails t if the server is not
// reachable (see the package documentation). Cleanups registered after
// DSN returns, such as closing a store, run before the schema is dropped.
func DSN(t testing.TB) string {
	t.Helper()
	testkit.Heavy(t, "needs PostgreSQL")
	// One probe per process: an unreachable server costs one timeout,
	// not one per test.
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := connect(ctx)
		if err == nil {
			c.Close(ctx)
		}
		probeErr = err
	})
	if probeErr != nil {
		unreachable(t, probeErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := connect(ctx)
	if err != nil {
		unreachable(t, err)
	}
	defer c.Close(ctx)
	schema := SchemaPrefix + randomHex(8)
	if _, err := c.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := connect(ctx)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(BaseDSN(), schema)
}

// WithSearchPath returns dsn (URL or keyword/value form) with its
// search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
