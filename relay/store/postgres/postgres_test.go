package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/postgres"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
	"github.com/deskside/deskside/relay/store/storetest"
)

// open opens a store on dsn, closed when t ends.
func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openFresh opens a store on a fresh schema and returns it with its DSN.
func openFresh(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	return open(t, dsn), dsn
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openFresh(t)
		return s
	})
}

// query runs a query of the test's own on dsn and scans its one row.
func query(t *testing.T, dsn, sql string, dest ...any) {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(t.Context(), sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestAuditTwoStores has two Stores on one database, as two relays would,
// append to the audit log at once, one event at a time and in batches
// (AppendAudits): the chain stays one chain, each batch consecutive in it.
func TestAuditTwoStores(t *testing.T) {
	a, dsn := openFresh(t)
	b := open(t, dsn)
	ctx := t.Context()
	stores := []*postgres.Store{a, b}
	const writers, each = 8, 25 // writers alternate between the stores
	errs := barrier(writers, func(w int) error {
		s := stores[w%2]
		ev := func(i int) store.AuditEvent {
			return store.AuditEvent{
				Time: time.Unix(1_800_000_000, int64(w*each+i)), Actor: fmt.Sprintf("relay-%d", w%2),
				Action: "test", Detail: fmt.Sprintf("writer %d event %d", w, i),
			}
		}
		for i := 0; i < each; {
			if w%4 >= 2 { // half the writers append in batches of up to 4
				in := make([]store.AuditEvent, min(1+i%4, each-i))
				for k := range in {
					in[k] = ev(i + k)
				}
				got, err := s.AppendAudits(ctx, in, store.AuditHash)
				if err != nil {
					return err
				}
				for k, e := range got {
					if e.Hash != store.AuditHash(e.PrevHash, e) || (k > 0 && (e.Seq != got[k-1].Seq+1 || e.PrevHash != got[k-1].Hash)) {
						return fmt.Errorf("batch event %d (record %d) does not verify or is not consecutive", k, e.Seq)
					}
				}
				i += len(in)
				continue
			}
			got, err := s.AppendAudit(ctx, ev(i), store.AuditHash)
			if err != nil {
				return err
			}
			if got.Hash != store.AuditHash(got.PrevHash, got) {
				return fmt.Errorf("event %d does not verify", got.Seq)
			}
			i++
		}
		return nil
	})
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	// Either store sees the same single chain: Seq 1..n, each linked to
	// the previous, every event once.
	for name, s := range map[string]*postgres.Store{"a": a, "b": b} {
		events, err := s.ListAudit(ctx, store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != writers*each {
			t.Fatalf("store %s lists %d events, want %d", name, len(events), writers*each)
		}
		prev, seen := "", map[string]bool{}
		for i := range events {
			e := events[len(events)-1-i]
			if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != store.AuditHash(e.PrevHash, e) || seen[e.Detail] {
				t.Fatalf("store %s: event %d breaks the chain: %+v (previous hash %q)", name, i+1, e, prev)
			}
			prev, seen[e.Detail] = e.Hash, true
		}
	}
}

// TestEnrollTokenTwoStores races consumers on two Stores for one token.
func TestEnrollTokenTwoStores(t *testing.T) {
	a, dsn := openFresh(t)
	b := open(t, dsn)
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	for r := range 10 {
		tok := store.EnrollToken{ID: fmt.Sprintf("race-%d", r), SecretHash: []byte("0123456789abcdef0123456789abcdef"),
			ExpiresAt: now.Add(time.Hour), Uses: 3, CreatedAt: now}
		if err := a.CreateEnrollToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		errs := barrier(12, func(i int) error {
			return []*postgres.Store{a, b}[i%2].ConsumeEnrollToken(ctx, tok.ID, tok.SecretHash, now)
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrTokenUsed):
				t.Fatalf("round %d: %v", r, err)
			}
		}
		if won != tok.Uses {
			t.Fatalf("round %d: %d consumers won, want %d", r, won, tok.Uses)
		}
	}
}

// TestChargeLoginTwoStores has 50 sign-ins on two Stores (two relays
// sharing the database) race for one account: exactly auth.MaxFailures
// are counted and one of them locks it.
func TestChargeLoginTwoStores(t *testing.T) {
	a, dsn := openFresh(t)
	b := open(t, dsn)
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	const maxFailures = 5
	for r := range 5 {
		name := fmt.Sprintf("race-%d", r)
		if err := a.CreateTechnician(ctx, store.Technician{Name: name, PasswordHash: "x", Role: 1, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		var locks atomic.Int32
		errs := barrier(50, func(i int) error {
			c, err := []*postgres.Store{a, b}[i%2].ChargeLogin(ctx, name, now, maxFailures, 15*time.Minute)
			if c.Locked && err == nil {
				locks.Add(1)
			}
			return err
		})
		counted := 0
		for _, err := range errs {
			switch {
			case err == nil:
				counted++
			case !errors.Is(err, store.ErrLocked):
				t.Fatalf("round %d: %v", r, err)
			}
		}
		if counted != maxFailures || locks.Load() != 1 {
			t.Fatalf("round %d: %d attempts counted, %d locked; want %d and 1", r, counted, locks.Load(), maxFailures)
		}
	}
}

// TestCompactTwoStores has two Stores compact at once while samples keep
// arriving: every sample ends up in exactly one place, raw or folded.
func TestCompactTwoStores(t *testing.T) {
	a, dsn := openFresh(t)
	b := open(t, dsn)
	ctx := t.Context()
	if err := a.CreateDevice(ctx, store.Device{ID: "dev-1", Hostname: "pc"}); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_800_000_000, 0)
	cutoff := start.Add(10 * time.Hour)
	const batches, per = 20, 50
	var folded [2]int64
	errs := barrier(4, func(i int) error {
		switch i {
		case 0, 1: // writers, old and new samples mixed
			for k := range batches / 2 {
				batch := make([]store.HealthSample, per)
				for j := range batch {
					n := (i*batches/2+k)*per + j
					batch[j] = store.HealthSample{ID: uint64(n), Time: start.Add(time.Duration(n) * 30 * time.Second), MemUsedBytes: 1 << 20}
				}
				if _, err := []*postgres.Store{a, b}[i].AddHealthSamples(ctx, "dev-1", batch); err != nil {
					return err
				}
			}
		default: // compactors
			for range 10 {
				n, err := []*postgres.Store{a, b}[i-2].CompactHealth(ctx, cutoff, time.Hour, time.Time{})
				if err != nil {
					return err
				}
				folded[i-2] += n
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
	}
	last, err := a.CompactHealth(ctx, cutoff, time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var inBuckets, raw, rawOld int64
	query(t, dsn, `SELECT coalesce(sum(n), 0)::bigint FROM health_buckets`, &inBuckets)
	query(t, dsn, `SELECT count(*), count(*) FILTER (WHERE time < `+fmt.Sprint(cutoff.UnixNano())+`) FROM health_raw`, &raw, &rawOld)
	total := folded[0] + folded[1] + last
	if inBuckets != total || rawOld != 0 || inBuckets+raw != batches*per {
		t.Fatalf("folded %d (reported) / %d (in buckets), %d raw (%d older than the cutoff); want folded + raw = %d, none old",
			total, inBuckets, raw, rawOld, batches*per)
	}
}

// TestConcurrentOpen opens a new schema from several Stores at once, as
// relays starting together would: the migrations run once, all succeed.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	stores := make([]*postgres.Store, 4)
	errs := barrier(len(stores), func(i int) error {
		s, err := postgres.Open(t.Context(), dsn)
		stores[i] = s
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	want, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n, distinct, maxV int
	query(t, dsn, `SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations`, &n, &distinct, &maxV)
	if n != want || distinct != want || maxV != want {
		t.Fatalf("schema_migrations has %d rows, %d versions, max %d; want %d of each", n, distinct, maxV, want)
	}
	if err := stores[1].CreateDevice(t.Context(), store.Device{ID: "d", Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[3].GetDevice(t.Context(), "d"); err != nil {
		t.Fatal(err)
	}
}

func TestReopen(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(ctx, store.Device{ID: "dev-1", Hostname: "pc", DeviceSummary: store.DeviceSummary{MemoryBytes: 1<<64 - 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, store.AuditEvent{Time: time.Unix(0, 1), Action: "x"}, store.AuditHash); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dsn)
	d, err := s.GetDevice(ctx, "dev-1")
	if err != nil || d.MemoryBytes != 1<<64-1 {
		t.Fatalf("after reopening: %+v, %v", d, err)
	}
	e, err := s.AppendAudit(ctx, store.AuditEvent{Time: time.Unix(0, 2), Action: "y"}, store.AuditHash)
	if err != nil || e.Seq != 2 {
		t.Fatalf("append after reopening: %+v, %v", e, err)
	}
	want, _ := postgres.Migrations()
	var n int
	query(t, dsn, `SELECT count(*) FROM schema_migrations`, &n)
	if n != want {
		t.Fatalf("%d migrations recorded after reopening, want %d", n, want)
	}
}

func TestSchemaTooNew(t *testing.T) {
	s, dsn := openFresh(t)
	s.Close()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(t.Context(), `INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s, err = postgres.Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema from the future succeeded")
	}
	if !errors.Is(err, postgres.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
		t.Fatalf("Open: %v, want ErrSchemaTooNew naming version 999", err)
	}
}

func TestOpenMissingSchema(t *testing.T) {
	dsn := pgtest.WithSearchPath(pgtest.DSN(t), "deskside_no_such_schema")
	s, err := postgres.Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path naming no schema succeeded")
	}
	if !strings.Contains(err.Error(), "search_path") {
		t.Fatalf("Open: %v, want an error naming search_path", err)
	}
}

// TestOpenBadDSN checks that a malformed connection string fails at once,
// with an error that does not reveal its password.
func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://alice:s3cr3t@localhost:notaport/db",
		"postgres://alice:s3cr3t@[::1/db",
		"host=localhost port=notaport password=s3cr3t",
		"host=localhost password='s3cr3t' sslmode=bogus",
		"postgres://alice@localhost/db?sslmode=bogus&password=s3cr3t",
	} {
		s, err := postgres.Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open(%q) error reveals the password: %v", dsn, err)
		}
		if !strings.Contains(err.Error(), "invalid connection string") {
			t.Errorf("Open(%q) error %q does not say the connection string is invalid", dsn, err)
		}
	}
}

// TestOpenUnreachable checks that Open fails, rather than hangs, when no
// server answers, and says so without the password.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, dsn := range []string{
		"postgres://alice:s3cr3t@" + addr + "/db?sslmode=disable",
		// A listener that accepts but never speaks: only the connect
		// timeout ends the attempt.
		silentServer(t) + "&connect_timeout=1",
	} {
		s, err := postgres.Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", postgres.Redact(dsn))
		}
		if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "connect") {
			t.Errorf("Open(%s): %v; want a connect error without the password", postgres.Redact(dsn), err)
		}
	}
}

// silentServer accepts connections and never answers; it returns a DSN
// naming it.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return "postgres://alice:s3cr3t@" + l.Addr().String() + "/db?sslmode=disable"
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://alice:s3cr3t@db:5432/deskside?sslmode=verify-full", "postgres://alice:xxxxx@db:5432/deskside?sslmode=verify-full"},
		{"postgresql://alice@db/deskside", "postgresql://alice@db/deskside"},
		{"postgres://alice@db/deskside?password=s3cr3t", "postgres://alice@db/deskside?password=xxxxx"},
		{"postgres://alice:p@ss@db/x", "postgres://alice:xxxxx@db/x"},
		{"host=db user=alice password=s3cr3t dbname=deskside", "host=db user=alice password=xxxxx dbname=deskside"},
		{"host=db password = 's3 cr\\'3t' dbname=deskside", "host=db password = xxxxx dbname=deskside"},
	} {
		if got := postgres.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestContextCanceled checks that a cancelled context fails an operation
// and leaves the store usable.
func TestContextCanceled(t *testing.T) {
	s, _ := openFresh(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.CreateDevice(ctx, store.Device{ID: "x", Hostname: "x"}); err == nil {
		t.Fatal("CreateDevice with a cancelled context succeeded")
	}
	if err := s.CreateDevice(t.Context(), store.Device{ID: "x", Hostname: "x"}); err != nil {
		t.Fatalf("CreateDevice after a cancelled one: %v", err)
	}
}

// TestAnyString checks the strings PostgreSQL text cannot hold (NUL,
// invalid UTF-8): stored exactly in the audit log and inventory history
// (bytea), refused with a clear error, not mangled, where text is needed.
func TestAnyString(t *testing.T) {
	s, _ := openFresh(t)
	ctx := t.Context()
	odd := "a\x00b\xff\xfe end"
	e, err := s.AppendAudit(ctx, store.AuditEvent{Time: time.Unix(1, 1), Actor: odd, Action: odd, Target: odd, Detail: odd}, store.AuditHash)
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ListAudit(ctx, store.AuditFilter{Limit: 1})
	if err != nil || len(events) != 1 || events[0] != e || e.Detail != odd || e.Hash != store.AuditHash("", e) {
		t.Fatalf("ListAudit = %+v, %v; appended %+v", events, err, e)
	}

	if err := s.CreateDevice(ctx, store.Device{ID: "dev-1", Hostname: "pc"}); err != nil {
		t.Fatal(err)
	}
	c := store.InventoryChange{DeviceID: "dev-1", Time: time.Unix(2, 0).UTC(), Field: "software[\x00]", From: odd, To: "\xc3"}
	if err := s.PutInventory(ctx, store.Inventory{DeviceID: "dev-1", CollectedAt: time.Unix(2, 0)}, store.DeviceSummary{}, []store.InventoryChange{c}); err != nil {
		t.Fatal(err)
	}
	hist, err := s.InventoryHistory(ctx, "dev-1", 0)
	if err != nil || len(hist) != 1 || hist[0] != c {
		t.Fatalf("InventoryHistory = %+v, %v; want [%+v]", hist, err, c)
	}

	err = s.CreateDevice(ctx, store.Device{ID: "dev-2", Hostname: "pc\x00"})
	if err == nil || !strings.Contains(err.Error(), "0x00") {
		t.Fatalf("CreateDevice with a NUL in the hostname: %v, want PostgreSQL's error naming 0x00", err)
	}
}

// barrier starts n goroutines running fn at the same moment and waits for
// them; it returns their errors by index.
func barrier(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return errs
}
