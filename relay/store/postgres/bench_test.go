package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/storetest"
)

// BenchmarkHealthIngest measures AddHealthSamples throughput (see
// storetest.BenchHealthIngest), as the SQLite benchmark of the same name.
func BenchmarkHealthIngest(b *testing.B) {
	storetest.BenchHealthIngest(b, func(tb testing.TB) store.Store { s, _ := openFresh(tb); return s })
}

// BenchmarkTickets measures ticket lookup by code, a queue page and a
// search over 100,000 tickets (see storetest.BenchTickets).
func BenchmarkTickets(b *testing.B) {
	storetest.BenchTickets(b, func(tb testing.TB) store.Store { s, _ := openFresh(tb); return s })
}

// BenchmarkKBSearch searches 10,000 articles (see storetest.BenchKBSearch),
// as the SQLite benchmark of the same name. After storing them it runs
// ANALYZE, as autovacuum would on a relay's database after that many
// inserts, rather than depend on when autovacuum gets to this schema: the
// search leaves out words most articles contain by those statistics.
func BenchmarkKBSearch(b *testing.B) {
	var dsn string
	storetest.BenchKBSearch(b, func(tb testing.TB) store.Store {
		s, d := openFresh(tb)
		dsn = d
		return s
	}, func(tb testing.TB, _ store.Store) {
		c, err := pgx.Connect(tb.Context(), dsn)
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close(tb.Context())
		if _, err := c.Exec(tb.Context(), `ANALYZE kb_articles`); err != nil {
			tb.Fatal(err)
		}
	})
}
