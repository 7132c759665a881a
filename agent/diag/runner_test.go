package diag

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// resultOf returns the result named name.
func resultOf(t testing.TB, rep *desksidev1.CheckReport, name string) *desksidev1.CheckResult {
	t.Helper()
	for _, r := range rep.GetResults() {
		if r.GetName() == name {
			return r
		}
	}
	t.Fatalf("no result for %s in %v", name, rep)
	return nil
}

// evidence returns the value of the first evidence entry with key.
func evidence(r *desksidev1.CheckResult, key string) (string, bool) {
	for _, e := range r.GetEvidence() {
		if e.GetKey() == key {
			return e.GetValue(), true
		}
	}
	return "", false
}

// describe renders a result for failure messages.
func describe(r *desksidev1.CheckResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q (hint %q)", r.GetName(), r.GetStatus(), r.GetSummary(), r.GetHint())
	for _, e := range r.GetEvidence() {
		fmt.Fprintf(&b, "\n\t%s = %s", e.GetKey(), e.GetValue())
	}
	return b.String()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestUnknownCheckAndOrder(t *testing.T) {
	r := New(Options{Logger: testLogger(t)})
	rep := r.Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"system.uptime", "no.such", "network.proxy", "system.uptime"}})
	var names []string
	for _, res := range rep.GetResults() {
		names = append(names, res.GetName())
	}
	if want := []string{"network.proxy", "no.such", "system.uptime"}; !slices.Equal(names, want) {
		t.Fatalf("results %v, want %v (sorted, deduplicated)", names, want)
	}
	u := resultOf(t, rep, "no.such")
	if u.GetStatus() != statusUnavailable || u.GetSummary() != `unknown check "no.such"` {
		t.Errorf("unknown check: %s", describe(u))
	}
	for _, res := range rep.GetResults() {
		if res.GetDuration() == nil {
			t.Errorf("%s has no duration", res.GetName())
		}
	}
	if rep.GetStarted() == nil || rep.GetDuration() == nil {
		t.Errorf("report lacks started or duration: %v", rep)
	}
	// An unknown check is UNAVAILABLE, which outranks the passes.
	if rank(rep.GetOverall()) < rank(statusUnavailable) {
		t.Errorf("overall %v, want at least UNAVAILABLE", rep.GetOverall())
	}
}

func TestHostileNamesAreCleaned(t *testing.T) {
	evil := "\x1b]0;owned\x07\x1b[31mred\u202e" + strings.Repeat("x", 500)
	rep := New(Options{}).Run(t.Context(), &desksidev1.RunChecks{Checks: []string{evil}})
	res := rep.GetResults()[0]
	for _, s := range []string{res.GetName(), res.GetSummary()} {
		if strings.ContainsAny(s, "\x1b\x07\u202e") || !utf8.ValidString(s) {
			t.Errorf("not cleaned: %q", s)
		}
	}
	if n := utf8.RuneCountInString(res.GetName()); n > maxNameRunes {
		t.Errorf("name is %d runes, cap %d", n, maxNameRunes)
	}
	if n := utf8.RuneCountInString(res.GetSummary()); n > maxTextRunes {
		t.Errorf("summary is %d runes, cap %d", n, maxTextRunes)
	}
}

func TestEvidenceIsCapped(t *testing.T) {
	r := new(result)
	for i := range 100 {
		r.add(fmt.Sprintf("k%d", i), strings.Repeat("v", 1000)+"\x1b[2J\n")
	}
	p := r.pass("ok").proto("x", time.Second)
	if len(p.GetEvidence()) != maxEvidence {
		t.Fatalf("%d evidence entries, want %d", len(p.GetEvidence()), maxEvidence)
	}
	last := p.GetEvidence()[maxEvidence-1]
	if last.GetKey() != "more" || last.GetValue() != "53 more not shown" {
		t.Errorf("last entry %v, want the count of those left out", last)
	}
	v := p.GetEvidence()[0].GetValue()
	if utf8.RuneCountInString(v) > maxValueRunes || strings.ContainsAny(v, "\x1b\n") {
		t.Errorf("value not capped or cleaned: %d runes", utf8.RuneCountInString(v))
	}
}

// TestBlockedCheckIsAbandoned injects a check that blocks until its
// context is canceled: it must be reported as not finished, Run must
// return within the budget plus a little, and the check's goroutine (and
// every other one the run started) must end.
func TestBlockedCheckIsAbandoned(t *testing.T) {
	const budget = 400 * time.Millisecond
	const slack = 300 * time.Millisecond
	testkit.CheckGoroutines(t)
	r := New(Options{Logger: testLogger(t)})
	ended := make(chan struct{})
	r.checks["test.block"] = func(ctx context.Context, _ *checkEnv) *result {
		defer close(ended)
		<-ctx.Done()
		return new(result).pass("unblocked")
	}
	start := time.Now()
	rep := r.Run(t.Context(), &desksidev1.RunChecks{
		Checks: []string{"test.block", "network.proxy", "network.interfaces", "system.uptime", "memory.swap"},
		Budget: durationpb.New(budget),
	})
	took := time.Since(start)
	if took < budget || took > budget+slack {
		t.Errorf("Run took %v, want the budget %v (+%v)", took, budget, slack)
	}
	b := resultOf(t, rep, "test.block")
	if b.GetStatus() != statusUnavailable || b.GetSummary() != "did not finish within the 400ms budget" {
		t.Errorf("blocked check: %s", describe(b))
	}
	if d := b.GetDuration().AsDuration(); d < budget {
		t.Errorf("blocked check's duration %v, want the budget", d)
	}
	for _, name := range []string{"network.proxy", "network.interfaces", "system.uptime", "memory.swap"} {
		if res := resultOf(t, rep, name); strings.HasPrefix(res.GetSummary(), "did not finish") {
			t.Errorf("quick check abandoned: %s", describe(res))
		}
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked check's goroutine did not end after the run")
	}
}

func TestRunCanceledByCaller(t *testing.T) {
	r := New(Options{})
	r.checks["test.block"] = func(ctx context.Context, _ *checkEnv) *result {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep := r.Run(ctx, &desksidev1.RunChecks{Checks: []string{"test.block"}})
	if res := rep.GetResults()[0]; res.GetSummary() != "did not finish: the run was canceled" {
		t.Errorf("got %s", describe(res))
	}
}

func TestPanicIsContained(t *testing.T) {
	r := New(Options{})
	r.checks["test.panic"] = func(context.Context, *checkEnv) *result { panic("boom") }
	res := r.Run(t.Context(), &desksidev1.RunChecks{Checks: []string{"test.panic"}}).GetResults()[0]
	if res.GetStatus() != statusUnavailable || !strings.Contains(res.GetSummary(), "boom") {
		t.Errorf("got %s", describe(res))
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name string
		in   *durationpb.Duration
		want time.Duration
	}{
		{"unset", nil, DefaultBudget},
		{"zero", durationpb.New(0), DefaultBudget},
		{"negative", durationpb.New(-time.Second), DefaultBudget},
		{"invalid", &durationpb.Duration{Seconds: 1, Nanos: -5}, DefaultBudget},
		{"given", durationpb.New(2 * time.Second), 2 * time.Second},
		{"capped", durationpb.New(10 * time.Minute), MaxBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := budgetOf(tt.in); got != tt.want {
				t.Errorf("budgetOf(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestOverallIsWorst(t *testing.T) {
	const (
		P = statusPass
		W = statusWarn
		F = statusFail
		U = statusUnavailable
	)
	tests := []struct {
		name string
		in   []desksidev1.CheckStatus
		want desksidev1.CheckStatus
	}{
		{"all pass", []desksidev1.CheckStatus{P, P}, P},
		{"unavailable over pass", []desksidev1.CheckStatus{P, U, P}, U},
		{"warn over unavailable", []desksidev1.CheckStatus{U, W, P}, W},
		{"fail over all", []desksidev1.CheckStatus{W, F, U, P}, F},
		{"none", nil, desksidev1.CheckStatus_CHECK_STATUS_UNSPECIFIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []*desksidev1.CheckResult
			for _, s := range tt.in {
				rs = append(rs, &desksidev1.CheckResult{Status: s})
			}
			if got := worst(rs); got != tt.want {
				t.Errorf("worst(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("zero is the documented defaults", func(t *testing.T) {
		c := newConfig(nil, Options{}.withDefaults(), log)
		want := config{
			dnsName:  "localhost",
			diskWarn: 85, diskFail: 95, inodeWarn: 85, inodeFail: 95,
			memWarn: 90, memFail: 97, swapWarn: 50,
			loadWarn: 1.5, loadFail: 3, hogPercent: 90, updatesWarn: 1,
			timeOffsetWarn: time.Second, uptimeWarn: 30 * 24 * time.Hour,
		}
		if fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("got  %+v\nwant %+v", c, want)
		}
	})
	t.Run("given values are kept, nonsense replaced", func(t *testing.T) {
		c := newConfig(&desksidev1.CheckConfig{
			DiskWarnPercent: 50, DiskFailPercent: math.NaN(), LoadWarnPerCore: 0.0001,
			MemoryWarnPercent: -3, CpuHogPercent: math.Inf(1), UpdatesWarn: 7,
			UptimeWarn: durationpb.New(time.Hour), TimeOffsetWarn: durationpb.New(-time.Second),
			DnsServers: []string{"127.0.0.1", "[::1]:5353", "10.0.0.1:53", "not-an-ip", "1.2.3.4:0"},
		}, Options{}.withDefaults(), log)
		if c.diskWarn != 50 || c.diskFail != 95 || c.loadWarn != 0.0001 || c.memWarn != 90 || c.hogPercent != 90 ||
			c.updatesWarn != 7 || c.uptimeWarn != time.Hour || c.timeOffsetWarn != time.Second {
			t.Errorf("got %+v", c)
		}
		if want := []string{"127.0.0.1:53", "[::1]:5353", "10.0.0.1:53"}; !slices.Equal(c.dnsServers, want) {
			t.Errorf("dns servers %v, want %v", c.dnsServers, want)
		}
		if want := []string{"not-an-ip", "1.2.3.4:0"}; !slices.Equal(c.badServers, want) {
			t.Errorf("bad servers %v, want %v", c.badServers, want)
		}
	})
	relay := []struct{ relay, dns, url string }{
		{"relay.example.com", "relay.example.com", "https://relay.example.com/"},
		{"relay.example.com:8443", "relay.example.com", "https://relay.example.com:8443/"},
		{"https://relay.example.com:8443/path?x", "relay.example.com", "https://relay.example.com:8443/"},
		{"[2001:db8::1]:443", "2001:db8::1", "https://[2001:db8::1]:443/"},
		{"", "localhost", ""},
	}
	for _, tt := range relay {
		t.Run("relay "+tt.relay, func(t *testing.T) {
			c := newConfig(nil, Options{RelayHost: tt.relay}.withDefaults(), log)
			if c.dnsName != tt.dns || c.httpsURL != tt.url {
				t.Errorf("dns %q url %q, want %q %q", c.dnsName, c.httpsURL, tt.dns, tt.url)
			}
		})
	}
	t.Run("explicit targets win", func(t *testing.T) {
		c := newConfig(&desksidev1.CheckConfig{DnsName: "a.test", HttpsUrl: "https://b.test/x"}, Options{RelayHost: "r.test"}.withDefaults(), log)
		if c.dnsName != "a.test" || c.httpsURL != "https://b.test/x" {
			t.Errorf("got %q %q", c.dnsName, c.httpsURL)
		}
	})
}

func TestLevelBoundaries(t *testing.T) {
	tests := []struct {
		v    float64
		want desksidev1.CheckStatus
	}{
		{0, statusPass}, {84.99, statusPass}, {85, statusWarn}, {94.99, statusWarn}, {95, statusFail}, {100, statusFail},
	}
	for _, tt := range tests {
		if got := level(tt.v, 85, 95); got != tt.want {
			t.Errorf("level(%v, 85, 95) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestEmptyRequestRunsEveryCheck(t *testing.T) {
	r := New(Options{})
	quick := func(context.Context, *checkEnv) *result { return new(result).pass("ok") }
	r.checks = map[string]checkFunc{"b.two": quick, "a.one": quick}
	for _, req := range []*desksidev1.RunChecks{nil, {}} {
		rep := r.Run(t.Context(), req)
		var names []string
		for _, res := range rep.GetResults() {
			names = append(names, res.GetName())
		}
		if !slices.Equal(names, []string{"a.one", "b.two"}) || rep.GetOverall() != statusPass {
			t.Errorf("request %v: results %v, overall %v", req, names, rep.GetOverall())
		}
	}
}
