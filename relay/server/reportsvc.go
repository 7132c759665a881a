package server

// The help-desk reports (relay/reports): the RPC adapter of ReportService.
// Reading them needs tier 3 (they rate technicians; Rules in authz.go);
// every CSV export is audited, since the file leaves the relay.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/reports"
)

type reportService struct {
	desksidev1.UnimplementedReportServiceServer
	s *Server
}

func (r *reportService) build(ctx context.Context, from, to *timestamppb.Timestamp) (reports.Report, error) {
	if from == nil || to == nil {
		return reports.Report{}, status.Error(codes.InvalidArgument, "give the period's start and end (deskside report --from 2026-11-01 --to 2026-12-01)")
	}
	rep, err := reports.Build(ctx, r.s.store, from.AsTime(), to.AsTime())
	if errors.Is(err, reports.ErrPeriod) {
		return reports.Report{}, status.Error(codes.InvalidArgument, err.Error())
	}
	if err != nil {
		return reports.Report{}, storeErr(err)
	}
	return rep, nil
}

// GetReport implements ReportService.GetReport.
func (r *reportService) GetReport(ctx context.Context, req *desksidev1.GetReportRequest) (*desksidev1.GetReportResponse, error) {
	rep, err := r.build(ctx, req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	return &desksidev1.GetReportResponse{Report: reportProto(rep)}, nil
}

// ExportReportCsv implements ReportService.ExportReportCsv.
func (r *reportService) ExportReportCsv(ctx context.Context, req *desksidev1.ExportReportCsvRequest) (*desksidev1.ExportReportCsvResponse, error) {
	sec := req.GetSection()
	if _, err := reports.CSV(reports.Report{}, sec); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	rep, err := r.build(ctx, req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	b, err := reports.CSV(rep, sec)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	period := rep.From.Format(time.DateOnly) + "-" + rep.To.Format(time.DateOnly)
	r.s.audit(ctx, callerFrom(ctx).Name, "report.export", sec, fmt.Sprintf("%s, %d bytes", period, len(b)))
	return &desksidev1.ExportReportCsvResponse{Filename: "deskside-" + sec + "-" + period + ".csv", Csv: string(b)}, nil
}

func secs(d time.Duration) uint32 { return uint32(max(0, d/time.Second)) }

func count(n int) uint32 { return uint32(max(0, n)) }

func statProto(s reports.Stat) *desksidev1.ReportStat {
	return &desksidev1.ReportStat{N: count(s.N), MedianSeconds: secs(s.Median), P90Seconds: secs(s.P90)}
}

func timesProto(p int, t reports.Times) *desksidev1.ReportTimes {
	name := reports.PriorityName(p)
	if p == 0 {
		name = "all"
	}
	return &desksidev1.ReportTimes{Priority: uint32(max(0, p)), PriorityName: name,
		FirstResponse: statProto(t.FirstResponse), Resolution: statProto(t.Resolution)}
}

func countsProto(cs []reports.Count) []*desksidev1.ReportCount {
	var out []*desksidev1.ReportCount
	for _, c := range cs {
		out = append(out, &desksidev1.ReportCount{Name: c.Name, Tickets: count(c.Tickets)})
	}
	return out
}

// reportProto is the wire form of a report (durations in whole seconds).
func reportProto(r reports.Report) *desksidev1.Report {
	out := &desksidev1.Report{From: timestamppb.New(r.From), To: timestamppb.New(r.To),
		TicketsOpened: count(r.TicketsOpened), Resolutions: count(r.Resolutions),
		Overall: timesProto(0, r.Overall), DeviceModels: countsProto(r.DeviceModels), OsVersions: countsProto(r.OSVersions)}
	for _, d := range r.Days {
		out.Days = append(out.Days, &desksidev1.ReportDay{Date: d.Date.Format(time.DateOnly), Opened: count(d.Opened), Resolved: count(d.Resolved)})
	}
	for _, c := range r.Categories {
		out.Categories = append(out.Categories, &desksidev1.ReportCategory{Name: c.Name, Opened: count(c.Opened), Resolved: count(c.Resolved)})
	}
	for _, p := range r.ByPriority {
		out.ByPriority = append(out.ByPriority, timesProto(p.Priority, p.Times))
	}
	for _, t := range r.Technicians {
		out.Technicians = append(out.Technicians, &desksidev1.ReportTechnician{Name: t.Name, Resolved: count(t.Resolved),
			MedianHandlingSeconds: secs(t.MedianHandling), Reopened: count(t.Reopened), ReopenRate: t.ReopenRate, Escalations: count(t.Escalations)})
	}
	for _, t := range r.Tiers {
		out.Tiers = append(out.Tiers, &desksidev1.ReportTier{Tier: count(t.Tier), Tickets: count(t.Tickets), Escalated: count(t.Escalated), Rate: t.Rate})
	}
	for _, a := range r.Articles {
		out.Articles = append(out.Articles, &desksidev1.ReportArticle{Id: a.ID, Title: a.Title, Tickets: count(a.Tickets)})
	}
	return out
}
