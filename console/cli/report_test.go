package cli_test

import (
	"strings"
	"testing"

	"github.com/deskside/deskside/relay/reports"
	"github.com/deskside/deskside/relay/store/storetest"
)

// TestReport drives `deskside report` against a real relay holding
// storetest's report data set: the printed report, a CSV section equal to
// the hand-worked answers, and the usage errors.
func TestReport(t *testing.T) {
	r := startRelay(t)
	storetest.SeedReport(t, r.srv.Store())
	c := r.cli(t)
	c.login("admin", adminPassword)
	res := c.must("report", "--from", "2026-11-02", "--to", "2026-11-04")
	for _, want := range []string{"4 tickets opened, 5 resolutions", "Technicians", "alice", "33.3%", "ThinkPad T14", "Printer queue stuck", "20m00s"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("report does not show %q:\n%s", want, res.stdout)
		}
	}
	res = c.must("report", "--from", "2026-11-02", "--to", "2026-11-04", "--csv", "technicians")
	if want, _ := reports.CSV(storetest.WantReport(), "technicians"); res.stdout != string(want) {
		t.Errorf("--csv technicians:\n%s\nwant\n%s", res.stdout, want)
	}
	c.fails(2, "--csv", "report", "--csv", "salaries")
	c.fails(2, "--from must not come after --to", "report", "--from", "2026-11-05", "--to", "2026-11-01")
}
