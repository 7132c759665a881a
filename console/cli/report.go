package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// reportSections are the sections --csv takes (as the relay names them).
var reportSections = []string{"days", "categories", "times", "technicians", "tiers", "devices", "os", "articles"}

const reportHelp = `
Prints the help-desk report for a period (tier 3 and admins): tickets
opened and resolved per day and per category; time to first response and
to resolution (median and p90, nearest rank) overall and per priority; per
technician tickets resolved, median handling time, reopen rate (resolutions
that came back within 14 days) and escalations; escalation rate per tier;
the top device models and OS versions; knowledge-base articles that
resolved tickets.

--from and --to are UTC dates; the period runs from the start of --from to
the end of --to (default: the last 30 days, today included), at most 366
days. --csv SECTION prints one section as CSV instead (one of ` + "days, categories, times, technicians, tiers, devices, os, articles" + `);
exports are recorded in the audit log.

Examples:
  deskside report
  deskside report --from 2026-11-01 --to 2026-11-30
  deskside report --from 2026-11-01 --to 2026-11-30 --csv technicians > technicians.csv`

func (e *runEnv) report(args []string) error {
	fs := e.flags("report", reportHelp)
	fromS := fs.String("from", "", "first day of the period, `YYYY-MM-DD` (UTC)")
	toS := fs.String("to", "", "last day of the period, `YYYY-MM-DD` (UTC), included")
	csvSec := fs.String("csv", "", "print this `SECTION` as CSV")
	asJSON := fs.Bool("json", false, "print the whole report as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	now := e.now().UTC()
	to := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	if *toS != "" {
		d, err := time.Parse(time.DateOnly, *toS)
		if err != nil {
			return errUsage(fs, "--to %q: give a date as 2026-11-30", *toS)
		}
		to = d.AddDate(0, 0, 1)
	}
	from := to.AddDate(0, 0, -30)
	if *fromS != "" {
		d, err := time.Parse(time.DateOnly, *fromS)
		if err != nil {
			return errUsage(fs, "--from %q: give a date as 2026-11-01", *fromS)
		}
		from = d
	}
	if !to.After(from) || to.Sub(from) > 366*24*time.Hour {
		return errUsage(fs, "the period from %s to %s must be one day to a year: --from must not come after --to", from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly))
	}
	if *csvSec != "" && !contains(reportSections, *csvSec) {
		return errUsage(fs, "--csv %q: use one of %s", *csvSec, strings.Join(reportSections, ", "))
	}
	out := e.output()
	if *csvSec != "" {
		resp, err := reportUnary(e, func(ctx context.Context, rs desksidev1.ReportServiceClient) (*desksidev1.ExportReportCsvResponse, error) {
			return rs.ExportReportCsv(ctx, &desksidev1.ExportReportCsvRequest{From: timestamppb.New(from), To: timestamppb.New(to), Section: *csvSec})
		})
		if err != nil {
			return err
		}
		fmt.Fprint(out, resp.GetCsv())
		return out.Flush()
	}
	resp, err := reportUnary(e, func(ctx context.Context, rs desksidev1.ReportServiceClient) (*desksidev1.GetReportResponse, error) {
		return rs.GetReport(ctx, &desksidev1.GetReportRequest{From: timestamppb.New(from), To: timestamppb.New(to)})
	})
	if err != nil {
		return err
	}
	r := resp.GetReport()
	if *asJSON {
		if err := writeJSON(out, r); err != nil {
			return err
		}
		return out.Flush()
	}
	if err := printReport(out, r, from, to); err != nil {
		return err
	}
	return out.Flush()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// reportUnary is unary for the ReportService.
func reportUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.ReportServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewReportServiceClient, call)
}

// dur prints whole seconds as the report shows them (1h05m, 3d4h).
func dur(s uint32) string {
	d := time.Duration(s) * time.Second
	switch {
	case s == 0:
		return "-"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	default:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func u(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// reportSection is one titled table of the printed report.
type reportSection struct {
	title  string
	header []string
	rows   [][]string
}

func printReport(w interface{ Write([]byte) (int, error) }, r *desksidev1.Report, from, to time.Time) error {
	fmt.Fprintf(w, "Report %s to %s (UTC): %d tickets opened, %d resolutions.\n\n", from.Format(time.DateOnly),
		to.AddDate(0, 0, -1).Format(time.DateOnly), r.GetTicketsOpened(), r.GetResolutions())
	var rows [][]string
	for _, d := range r.GetDays() {
		rows = append(rows, []string{d.GetDate(), u(d.GetOpened()), u(d.GetResolved())})
	}
	sections := []reportSection{{"Per day", []string{"DATE", "OPENED", "RESOLVED"}, rows}}
	rows = nil
	for _, c := range r.GetCategories() {
		rows = append(rows, []string{c.GetName(), u(c.GetOpened()), u(c.GetResolved())})
	}
	sections = append(sections, reportSection{"Per category", []string{"CATEGORY", "OPENED", "RESOLVED"}, rows})
	rows = nil
	for _, t := range append([]*desksidev1.ReportTimes{r.GetOverall()}, r.GetByPriority()...) {
		rows = append(rows, []string{t.GetPriorityName(), u(t.GetFirstResponse().GetN()), dur(t.GetFirstResponse().GetMedianSeconds()),
			dur(t.GetFirstResponse().GetP90Seconds()), u(t.GetResolution().GetN()), dur(t.GetResolution().GetMedianSeconds()), dur(t.GetResolution().GetP90Seconds())})
	}
	sections = append(sections, reportSection{"Times (tickets opened in the period)", []string{"PRIORITY", "RESPONDED", "FIRST RESPONSE MEDIAN", "P90", "RESOLVED", "RESOLUTION MEDIAN", "P90"}, rows})
	rows = nil
	for _, t := range r.GetTechnicians() {
		rows = append(rows, []string{t.GetName(), u(t.GetResolved()), dur(t.GetMedianHandlingSeconds()), u(t.GetReopened()), pct(t.GetReopenRate()), u(t.GetEscalations())})
	}
	sections = append(sections, reportSection{"Technicians", []string{"TECHNICIAN", "RESOLVED", "MEDIAN HANDLING", "REOPENED (14 DAYS)", "REOPEN RATE", "ESCALATIONS"}, rows})
	rows = nil
	for _, t := range r.GetTiers() {
		rows = append(rows, []string{u(t.GetTier()), u(t.GetTickets()), u(t.GetEscalated()), pct(t.GetRate())})
	}
	sections = append(sections, reportSection{"Escalation per tier", []string{"TIER", "TICKETS", "ESCALATED", "RATE"}, rows})
	for _, c := range []struct {
		title, col string
		cs         []*desksidev1.ReportCount
	}{{"Top device models", "MODEL", r.GetDeviceModels()}, {"Top OS versions", "OS", r.GetOsVersions()}} {
		rows = nil
		for _, x := range c.cs {
			rows = append(rows, []string{x.GetName(), u(x.GetTickets())})
		}
		sections = append(sections, reportSection{c.title, []string{c.col, "TICKETS"}, rows})
	}
	rows = nil
	for _, a := range r.GetArticles() {
		rows = append(rows, []string{strconv.FormatInt(a.GetId(), 10), a.GetTitle(), u(a.GetTickets())})
	}
	sections = append(sections, reportSection{"Knowledge-base articles that resolved tickets", []string{"ID", "TITLE", "TICKETS"}, rows})
	for _, s := range sections {
		fmt.Fprintf(w, "%s\n", s.title)
		if len(s.rows) == 0 {
			fmt.Fprintln(w, "  (none)")
		} else if err := table(w, "  ", s.header, s.rows); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}
