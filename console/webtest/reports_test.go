package webtest

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store/storetest"
)

// TestReportsPage opens the reports page over storetest's seeded report:
// the nav link, the per-day and per-category bar charts with the seeded
// counts, the technicians table, and a CSV download with the relay's
// header and the hand-worked figures.
func TestReportsPage(t *testing.T) {
	c := startConsole(t)
	storetest.SeedReport(t, c.relay.Srv.Store())
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.WaitVisible(css(`[data-testid=nav-reports]`)),
		chromedp.Navigate(c.url+"#/reports?from=2026-11-02&to=2026-11-04"),
		chromedp.WaitVisible(css(`[data-testid=report-tech-table]`)),
	)
	summary := value(t, c, 5*time.Second, chromedp.Evaluate[string](`document.querySelector('[data-testid=report-summary]').textContent`))
	if !strings.Contains(summary, "4 tickets opened, 5 resolutions") {
		t.Errorf("summary %q", summary)
	}
	// Per day: 3 days × (opened, resolved); the bars' titles carry the counts.
	bars := value(t, c, 5*time.Second, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=report-days] rect.chart-bar title')].map(e => e.textContent)`))
	want := []string{"11-02: opened 2", "11-02: resolved 2", "11-03: opened 1", "11-03: resolved 3", "11-04: opened 1", "11-04: resolved 0"}
	if strings.Join(bars, "|") != strings.Join(want, "|") {
		t.Errorf("per-day bars %q, want %q", bars, want)
	}
	cats := value(t, c, 5*time.Second, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=report-categories] rect.chart-bar').length`))
	if cats != 4 {
		t.Errorf("%d category bars, want 4 (printer, vpn × opened, resolved)", cats)
	}
	tech := value(t, c, 5*time.Second, chromedp.Evaluate[string](`document.querySelector('[data-testid=report-tech-table]').innerText`))
	for _, w := range []string{"alice", "33.3%", "carol", "50.0%"} {
		if !strings.Contains(tech, w) {
			t.Errorf("technicians table lacks %q:\n%s", w, tech)
		}
	}
	c.screenshot(t, "reports.png")

	dl := t.TempDir()
	c.run(t, 20*time.Second,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl,
			})
			return err
		}),
		chromedp.Click(css(`[data-testid=csv-technicians]`)),
	)
	name := filepath.Join(dl, "deskside-technicians-2026-11-02-2026-11-05.csv")
	servertest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if _, err := os.Stat(name); err != nil {
			return errNotYet
		}
		return nil
	})
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "technician,resolved,median_handling_s,reopened_14d,reopen_rate,escalations" ||
		strings.Join(rows[1], ",") != "alice,3,14400,1,0.3333,0" {
		t.Errorf("technicians CSV: %v", rows)
	}
}
