// Package audittest rewrites a relay's audit log the way an attacker
// with only the database would: straight SQL on the SQLite file or the
// PostgreSQL schema, behind the relay's back. Tests of the verifier (the
// relay/audit package, `deskside audit verify`) use it to edit, delete,
// reorder and insert records and to recompute the whole chain with the
// unkeyed hash.
package audittest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" driver, as relay/store/sqlite uses

	"github.com/deskside/deskside/relay/store"
)

// DB is a raw connection to a store's database.
type DB struct {
	t    testing.TB
	lite *sql.DB
	pg   *pgx.Conn
}

// OpenSQLite opens the relay's SQLite file directly.
func OpenSQLite(t testing.TB, path string) *DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &DB{t: t, lite: db}
}

// OpenPostgres connects to the PostgreSQL database (and schema) dsn names.
func OpenPostgres(t testing.TB, dsn string) *DB {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &DB{t: t, pg: conn}
}

// exec runs q, written with $1, $2… placeholders, on either database.
// String arguments are bytea in PostgreSQL's audit_log, text in SQLite's.
func (d *DB) exec(q string, args ...any) {
	d.t.Helper()
	var err error
	if d.pg != nil {
		for i, a := range args {
			if s, ok := a.(string); ok {
				args[i] = []byte(s)
			}
		}
		_, err = d.pg.Exec(context.Background(), q, args...)
	} else {
		for i := len(args); i >= 1; i-- {
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), "?")
		}
		_, err = d.lite.Exec(q, args...)
	}
	if err != nil {
		d.t.Fatalf("tamper: %s: %v", q, err)
	}
}

// Events reads the whole log, oldest first.
func (d *DB) Events() []store.AuditEvent {
	d.t.Helper()
	const q = `SELECT seq, time, actor, action, target, detail, prev_hash, hash FROM audit_log ORDER BY seq`
	var out []store.AuditEvent
	if d.pg != nil {
		rows, err := d.pg.Query(context.Background(), q)
		if err != nil {
			d.t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e    store.AuditEvent
				t    int64
				a, b []byte
				c, x []byte
			)
			if err := rows.Scan(&e.Seq, &t, &a, &b, &c, &x, &e.PrevHash, &e.Hash); err != nil {
				d.t.Fatal(err)
			}
			e.Time, e.Actor, e.Action, e.Target, e.Detail = store.FromNanos(t), string(a), string(b), string(c), string(x)
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			d.t.Fatal(err)
		}
		return out
	}
	rows, err := d.lite.Query(q)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e store.AuditEvent
			t int64
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			d.t.Fatal(err)
		}
		e.Time = store.FromNanos(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// EditDetail changes a record's detail, leaving its hashes.
func (d *DB) EditDetail(seq int64, detail string) {
	d.t.Helper()
	d.exec(`UPDATE audit_log SET detail = $1 WHERE seq = $2`, detail, seq)
}

// Delete removes a record, leaving a gap in the numbers.
func (d *DB) Delete(seq int64) {
	d.t.Helper()
	d.exec(`DELETE FROM audit_log WHERE seq = $1`, seq)
}

// DeleteFrom removes every record from seq on (the end of the log).
func (d *DB) DeleteFrom(seq int64) {
	d.t.Helper()
	d.exec(`DELETE FROM audit_log WHERE seq >= $1`, seq)
}

// Swap exchanges the positions of two records (their seq numbers).
func (d *DB) Swap(a, b int64) {
	d.t.Helper()
	const tmp = 1 << 40
	d.exec(`UPDATE audit_log SET seq = $1 WHERE seq = $2`, int64(tmp), a)
	d.exec(`UPDATE audit_log SET seq = $1 WHERE seq = $2`, a, b)
	d.exec(`UPDATE audit_log SET seq = $1 WHERE seq = $2`, b, int64(tmp))
}

// InsertAfter puts a forged record after record seq, renumbering the ones
// after it, and links it to record seq's hash with a made-up hash of its
// own (without the key there is no right one).
func (d *DB) InsertAfter(seq int64, e store.AuditEvent) {
	d.t.Helper()
	evs := d.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Seq > seq {
			d.exec(`UPDATE audit_log SET seq = $1 WHERE seq = $2`, evs[i].Seq+1, evs[i].Seq)
		}
	}
	var prev string
	for _, x := range evs {
		if x.Seq == seq {
			prev = x.Hash
		}
	}
	e.Seq, e.PrevHash = seq+1, prev
	e.Hash = store.AuditHash(prev, e)
	if d.pg != nil {
		// The schema allows one successor per record; the attacker, owning
		// the database, drops that rule first.
		d.exec(`ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_prev_hash_key`)
	}
	d.exec(`INSERT INTO audit_log (seq, time, actor, action, target, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Seq, store.Nanos(e.Time), e.Actor, e.Action, e.Target, e.Detail, hexText(e.PrevHash), hexText(e.Hash))
}

// RecomputeUnkeyed rewrites every hash from record from on with the
// unkeyed SHA-256 chain, so the log is consistent to anyone without the
// key: what an attacker with the database does after an edit.
func (d *DB) RecomputeUnkeyed(from int64) {
	d.t.Helper()
	prev := ""
	for _, e := range d.Events() {
		if e.Seq >= from {
			e.PrevHash = prev
			e.Hash = store.AuditHash(prev, e)
			d.exec(`UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3`, hexText(e.PrevHash), hexText(e.Hash), e.Seq)
		}
		prev = e.Hash
	}
}

// hexText marks a hash: prev_hash and hash are text in both databases.
type hexText string
