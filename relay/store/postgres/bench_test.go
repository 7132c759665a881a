package postgres_test

import (
	"testing"

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
// as the SQLite benchmark of the same name.
func BenchmarkKBSearch(b *testing.B) {
	storetest.BenchKBSearch(b, func(tb testing.TB) store.Store { s, _ := openFresh(tb); return s })
}
