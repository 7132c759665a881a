package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/reports"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
	"github.com/deskside/deskside/relay/store/storetest"
)

func reportClient(t *testing.T, r *servertest.Relay, name, pw string) (desksidev1.ReportServiceClient, context.Context) {
	t.Helper()
	_, ctx := r.Console(t, name, pw)
	md, _ := metadata.FromOutgoingContext(ctx)
	return desksidev1.NewReportServiceClient(r.Dial(t)), metadata.NewOutgoingContext(ctx, md)
}

func TestReportsSQLite(t *testing.T) {
	testReports(t, servertest.Start(t, servertest.Options{}))
}

func TestReportsPostgres(t *testing.T) {
	testReports(t, servertest.Start(t, servertest.Options{Database: pgtest.DSN(t)}))
}

// testReports reads storetest's seeded report through a real relay: every
// CSV section equals the hand-worked answers, the report's figures arrive
// intact, tier 2 is refused, a bad period and section are explained, and
// the export is audited.
func testReports(t *testing.T, r *servertest.Relay) {
	storetest.SeedReport(t, r.Srv.Store())
	addTechTo(t, r, "lead", "tier-three-password", desksidev1.Role_ROLE_TIER3)
	addTechTo(t, r, "t2", "tier-two-password", desksidev1.Role_ROLE_TIER2)
	lead, lctx := reportClient(t, r, "lead", "tier-three-password")
	t2, ctx2 := reportClient(t, r, "t2", "tier-two-password")
	from, to := timestamppb.New(storetest.ReportFrom), timestamppb.New(storetest.ReportTo)
	want := storetest.WantReport()

	res, err := lead.GetReport(lctx, &desksidev1.GetReportRequest{From: from, To: to})
	if err != nil {
		t.Fatalf("GetReport: %v", err)
	}
	rep := res.GetReport()
	if rep.GetTicketsOpened() != 4 || rep.GetResolutions() != 5 || len(rep.GetDays()) != 3 || rep.GetDays()[1].GetResolved() != 3 {
		t.Errorf("report totals: %v", rep)
	}
	if o := rep.GetOverall(); o.GetFirstResponse().GetMedianSeconds() != 20*60 || o.GetResolution().GetP90Seconds() != 24*3600 || o.GetPriorityName() != "all" {
		t.Errorf("overall times: %v; want first response median 1200 s, resolution p90 86400 s", o)
	}
	techs := rep.GetTechnicians()
	if len(techs) != 3 || techs[0].GetName() != "alice" || techs[0].GetResolved() != 3 || techs[0].GetMedianHandlingSeconds() != 4*3600 ||
		techs[2].GetReopenRate() != 0.5 || techs[1].GetEscalations() != 1 {
		t.Errorf("technicians: %v", techs)
	}
	for _, sec := range reports.Sections {
		got, err := lead.ExportReportCsv(lctx, &desksidev1.ExportReportCsvRequest{From: from, To: to, Section: sec})
		if err != nil {
			t.Fatalf("ExportReportCsv %s: %v", sec, err)
		}
		w, _ := reports.CSV(want, sec)
		if got.GetCsv() != string(w) {
			t.Errorf("CSV %s:\n got %s\nwant %s", sec, got.GetCsv(), w)
		}
		if wantName := "deskside-" + sec + "-2026-11-02-2026-11-05.csv"; got.GetFilename() != wantName {
			t.Errorf("filename %q, want %q", got.GetFilename(), wantName)
		}
	}

	if _, err := t2.GetReport(ctx2, &desksidev1.GetReportRequest{From: from, To: to}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("tier 2 GetReport: %v; want PermissionDenied", err)
	}
	_, err = lead.GetReport(lctx, &desksidev1.GetReportRequest{From: to, To: from})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "--from") {
		t.Errorf("reversed period: %v; want InvalidArgument naming --from", err)
	}
	_, err = lead.ExportReportCsv(lctx, &desksidev1.ExportReportCsvRequest{From: from, To: to, Section: "salaries"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "technicians") {
		t.Errorf("unknown section: %v; want InvalidArgument listing the sections", err)
	}

	_, actx := r.Admin(t)
	au, err := desksidev1.NewConsoleServiceClient(r.Dial(t)).ListAuditEvents(actx, &desksidev1.ListAuditEventsRequest{Action: "report.export", Limit: 100})
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	n := 0
	for _, e := range au.GetEvents() {
		if e.GetAction() == "report.export" && e.GetActor() == "lead" {
			n++
		}
	}
	if n != len(reports.Sections) {
		t.Errorf("%d report.export audit records, want %d", n, len(reports.Sections))
	}
}
