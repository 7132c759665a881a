package cli_test

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/audit/audittest"
	"github.com/deskside/deskside/relay/pki"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// auditRelay starts a real relay on SQLite or PostgreSQL and opens its
// database behind its back, as an attacker with only the database would.
func auditRelay(t *testing.T, backend string) (*relay, *audittest.DB) {
	t.Helper()
	var (
		o  servertest.Options
		db func(r *servertest.Relay) *audittest.DB
	)
	switch backend {
	case "sqlite":
		db = func(r *servertest.Relay) *audittest.DB {
			return audittest.OpenSQLite(t, filepath.Join(r.Dir, service.SQLiteFile))
		}
	case "postgres":
		o.Database = pgtest.DSN(t)
		db = func(*servertest.Relay) *audittest.DB { return audittest.OpenPostgres(t, o.Database) }
	}
	sr := servertest.Start(t, o)
	r := &relay{srv: sr.Srv, addr: sr.Addr, caPath: filepath.Join(sr.Dir, pki.CAFile), outputs: new(bytes.Buffer)}
	return r, db(sr)
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			for _, a := range []struct {
				name   string
				tamper func(db *audittest.DB, target int64)
				want   string
			}{
				{"edit a detail", func(db *audittest.DB, seq int64) { db.EditDetail(seq, "ipconfig") }, "was edited"},
				{"delete a record", func(db *audittest.DB, seq int64) { db.Delete(seq) }, "was deleted"},
				{"edit and recompute the whole chain without the key", func(db *audittest.DB, seq int64) {
					db.EditDetail(seq, "ipconfig")
					db.RecomputeUnkeyed(1)
				}, "record 1 "},
			} {
				t.Run(a.name, func(t *testing.T) {
					r, db := auditRelay(t, backend)
					c := r.cli(t)
					c.stdin = servertest.AdminPassword + "\n"
					c.must("login", "--relay", r.addr, "--ca", r.caPath, "--user", "admin", "--password-stdin")
					c.must("token", "create")
					c.must("token", "create", "--uses", "2")
					res := c.must("audit", "verify")
					m := regexp.MustCompile(`^(\d+) records verified`).FindStringSubmatch(res.stdout)
					if m == nil || !strings.Contains(res.stdout, "sealed with the relay's key") {
						t.Fatalf("audit verify of an untouched log: %s", res)
					}
					t.Logf("deskside audit verify, before:\n%s", res)
					// The first token.create is the record to tamper with.
					var target int64
					for _, e := range db.Events() {
						if e.Action == "token.create" && target == 0 {
							target = e.Seq
						}
					}
					a.tamper(db, target)
					res = c.fails(1, "the audit log does not verify", "audit", "verify")
					t.Logf("deskside audit verify, after:\n%s", res)
					want := a.want
					if !strings.Contains(res.stderr, want) {
						t.Errorf("audit verify after %s: want %q, got %s", a.name, want, res)
					}
					if a.name != "edit and recompute the whole chain without the key" && !strings.Contains(res.stderr, "record "+strconv.FormatInt(target, 10)) {
						t.Errorf("audit verify does not name record %d: %s", target, res)
					}
				})
			}
		})
	}
}

func TestAuditFilters(t *testing.T) {
	r, _ := auditRelay(t, "sqlite")
	c := r.cli(t)
	c.stdin = servertest.AdminPassword + "\n"
	c.must("login", "--relay", r.addr, "--ca", r.caPath, "--user", "admin", "--password-stdin")
	c.must("token", "create")
	res := c.must("audit", "--action", "token.*")
	if !strings.Contains(res.stdout, "token.create") || strings.Contains(res.stdout, " login ") {
		t.Errorf("audit --action token.*: %s", res)
	}
	res = c.must("audit", "--actor", "nobody")
	if !strings.Contains(res.stdout, "No audit events match.") {
		t.Errorf("audit --actor nobody: %s", res)
	}
	res = c.must("audit", "--since", "1h", "--action", "login")
	if !strings.Contains(res.stdout, "login") {
		t.Errorf("audit --since 1h --action login: %s", res)
	}
	res = c.must("audit", "--until", "2000-01-01")
	if !strings.Contains(res.stdout, "No audit events match.") {
		t.Errorf("audit --until 2000-01-01: %s", res)
	}
	res = c.must("audit", "--limit", "1")
	if !strings.Contains(res.stderr, "Older events: add --before") {
		t.Errorf("audit --limit 1 does not say how to go on: %s", res)
	}
	c.fails(2, "--since", "audit", "--since", "yesterday")
	c.fails(2, "* may only end it", "audit", "--action", "a*b")
	c.fails(1, "until", "audit", "--since", "2026-12-02", "--until", "2026-12-01")
}
