package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/audit"
	"github.com/deskside/deskside/relay/audit/audittest"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
	"github.com/deskside/deskside/relay/store/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// backend is a fresh store with a raw connection to its database.
type backend struct {
	name string
	open func(t *testing.T) (store.Store, *audittest.DB)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (store.Store, *audittest.DB) {
		path := filepath.Join(t.TempDir(), "deskside.db")
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, audittest.OpenSQLite(t, path)
	}},
	{"postgres", func(t *testing.T) (store.Store, *audittest.DB) {
		dsn := pgtest.DSN(t)
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, audittest.OpenPostgres(t, dsn)
	}},
}

// setup writes 3 unkeyed records (a log from before the key), opens the
// keyed log (anchor 4) and appends 8 more: records 1–12.
func setup(t *testing.T, b backend) (*audit.Log, *audittest.DB, string) {
	t.Helper()
	st, db := b.open(t)
	ctx := t.Context()
	for i, a := range []string{"relay.start", "login", "token.create"} {
		if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Actor: "admin", Action: a}, store.AuditHash); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(t.TempDir(), audit.KeyFile)
	clock := t0.Add(time.Minute)
	lg, err := audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if lg.Anchor() != 4 {
		t.Fatalf("anchor %d, want 4 (after 3 unkeyed records)", lg.Anchor())
	}
	for i := range 8 {
		if _, err := lg.Append(ctx, store.AuditEvent{Time: t0.Add(time.Hour + time.Duration(i)*time.Minute), Actor: "tech", Action: "command.run", Target: "dev-1", Detail: "uptime"}); err != nil {
			t.Fatal(err)
		}
	}
	return lg, db, keyFile
}

func verify(t *testing.T, lg *audit.Log) audit.Report {
	t.Helper()
	rep, err := lg.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyDetectsTampering(t *testing.T) {
	attacks := []struct {
		name    string
		tamper  func(db *audittest.DB)
		seq     int64
		kind    string
		checked int64
	}{
		{"edit a keyed record's detail", func(db *audittest.DB) { db.EditDetail(7, "nothing to see") }, 7, audit.KindEdited, 6},
		{"edit a record and recompute the chain from it, unkeyed", func(db *audittest.DB) {
			db.EditDetail(7, "nothing to see")
			db.RecomputeUnkeyed(7)
		}, 7, audit.KindEdited, 6},
		{"recompute the whole chain unkeyed", func(db *audittest.DB) { db.RecomputeUnkeyed(1) }, 4, audit.KindEdited, 3},
		{"edit an unkeyed record and recompute everything", func(db *audittest.DB) {
			db.EditDetail(2, "nothing to see")
			db.RecomputeUnkeyed(1)
		}, 4, audit.KindEdited, 3},
		{"edit an unkeyed record", func(db *audittest.DB) { db.EditDetail(2, "nothing to see") }, 2, audit.KindEdited, 1},
		{"delete a record", func(db *audittest.DB) { db.Delete(7) }, 7, audit.KindDeleted, 6},
		{"delete the anchor and everything after", func(db *audittest.DB) { db.DeleteFrom(4) }, 4, audit.KindDeleted, 3},
		{"swap two records", func(db *audittest.DB) { db.Swap(8, 9) }, 8, audit.KindReordered, 7},
		{"insert a record", func(db *audittest.DB) {
			db.InsertAfter(8, store.AuditEvent{Time: t0.Add(2 * time.Hour), Actor: "tech", Action: "login"})
		}, 9, audit.KindInserted, 8},
		{"append a forged record", func(db *audittest.DB) {
			db.InsertAfter(12, store.AuditEvent{Time: t0.Add(3 * time.Hour), Actor: "tech", Action: "login"})
		}, 13, audit.KindEdited, 12},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					lg, db, _ := setup(t, b)
					if rep := verify(t, lg); rep.Bad != nil || rep.Checked != 12 || rep.Unkeyed != 3 || rep.Last.Seq != 12 {
						t.Fatalf("before tampering: %+v", rep)
					}
					a.tamper(db)
					rep := verify(t, lg)
					if rep.Bad == nil || rep.Bad.Seq != a.seq || rep.Bad.Kind != a.kind || rep.Checked != a.checked {
						t.Fatalf("after %s: report %+v, problem %v; want record %d %s after %d verified", a.name, rep, rep.Bad, a.seq, a.kind, a.checked)
					}
				})
			}
		})
	}
}

func TestVerifyPages(t *testing.T) {
	st, db := backends[0].open(t)
	lg, err := audit.Open(t.Context(), audit.Config{KeyFile: filepath.Join(t.TempDir(), audit.KeyFile), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	n := 2*audit.PageSize + 10
	for i := 1; i < n; i++ {
		if _, err := lg.Append(t.Context(), store.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	var calls []int64
	rep, err := lg.Verify(t.Context(), func(checked int64, _ store.AuditEvent) { calls = append(calls, checked) })
	if err != nil || rep.Bad != nil || rep.Checked != int64(n) || rep.Unkeyed != 0 || rep.Anchor != 1 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if len(calls) != 2 || calls[0] != audit.PageSize {
		t.Errorf("progress calls %v, want one per %d", calls, audit.PageSize)
	}
	// A deletion right at a page boundary is found.
	db.Delete(audit.PageSize + 1)
	if rep := verify(t, lg); rep.Bad == nil || rep.Bad.Seq != audit.PageSize+1 || rep.Bad.Kind != audit.KindDeleted {
		t.Fatalf("after deleting record %d: %+v", audit.PageSize+1, rep.Bad)
	}
}

func TestOpen(t *testing.T) {
	st, _ := backends[0].open(t)
	ctx := t.Context()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, audit.KeyFile)
	lg, err := audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	raw, _ := os.ReadFile(keyFile)
	if !strings.Contains(string(raw), "anchor 1\n") {
		t.Errorf("key file does not record the anchor:\n%s", raw)
	}

	// Opening again keeps the key and the anchor, and appends nothing.
	again, err := audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st})
	if err != nil || again.Anchor() != 1 || again.KeyID() != lg.KeyID() {
		t.Fatalf("reopen: %v, %v", again, err)
	}
	if evs, _ := st.ListAudit(ctx, store.AuditFilter{}); len(evs) != 1 {
		t.Errorf("%d records after reopening, want the one anchor", len(evs))
	}

	// CreateKeyFile never replaces a key.
	pending := filepath.Join(dir, "pending.key")
	if err := audit.CreateKeyFile(pending); err != nil {
		t.Fatal(err)
	}
	if err := audit.CreateKeyFile(pending); err == nil {
		t.Error("CreateKeyFile replaced an existing key")
	}

	// Without its key file, a keyed log refuses to start a new key.
	os.Remove(keyFile)
	_, err = audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st})
	if !errors.Is(err, audit.ErrKeyMissing) || !strings.Contains(err.Error(), "copy audit.key") {
		t.Errorf("Open without the key of a keyed log: %v, want ErrKeyMissing naming the copy", err)
	}

	// A key file others can read is refused.
	if err := os.WriteFile(keyFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(keyFile, 0o644)
	if _, err := audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Open with a world-readable key file: %v", err)
	}
	os.Chmod(keyFile, 0o600)
	if _, err := audit.Open(ctx, audit.Config{KeyFile: keyFile, Store: st}); err != nil {
		t.Errorf("Open with the restored key: %v", err)
	}
	// A different key does not verify the log: its anchor is not its own.
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte("key "+strings.Repeat("ab", 32)+"\nanchor 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ol, err := audit.Open(ctx, audit.Config{KeyFile: other, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, ol); rep.Bad == nil || rep.Bad.Seq != 1 {
		t.Errorf("verify with another key: %+v", rep)
	}
}
