package diag

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// BenchmarkTriage runs every check at once, as the console's triage does,
// with a loopback HTTPS server standing in for the relay. Target: at most
// 5 s (the default budget) per triage.
func BenchmarkTriage(b *testing.B) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	r := New(Options{RelayHost: srv.Listener.Addr().String(), RootCAs: pool})
	ctx := b.Context()
	start := time.Now()
	for b.Loop() {
		rep := r.Run(ctx, &desksidev1.RunChecks{})
		for _, res := range rep.GetResults() {
			if strings.HasPrefix(res.GetSummary(), "did not finish") {
				b.Errorf("%s did not finish within the budget", res.GetName())
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/op")
}
