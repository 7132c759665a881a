package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
)

// ListAuditEvents implements ConsoleService.ListAuditEvents: a page of
// the log, newest first, filtered in the store.
func (c *consoleService) ListAuditEvents(ctx context.Context, req *desksidev1.ListAuditEventsRequest) (*desksidev1.ListAuditEventsResponse, error) {
	f := store.AuditFilter{
		Actor: req.GetActor(), Target: req.GetDevice(), Action: req.GetAction(),
		Before: req.GetBefore(), Limit: clampLimit(req.GetLimit(), 100, 10000),
	}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	if err := f.Validate(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "audit filter: %v (see `deskside audit -h`)", err)
	}
	evs, err := c.s.store.ListAudit(ctx, f)
	if err != nil {
		return nil, storeErr(err)
	}
	resp := &desksidev1.ListAuditEventsResponse{}
	for _, e := range evs {
		resp.Events = append(resp.Events, &desksidev1.AuditEvent{
			Seq: e.Seq, Time: timestamppb.New(e.Time), Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, Hash: e.Hash,
		})
	}
	return resp, nil
}

// verifyProgressEvery spaces the progress messages of VerifyAuditLog.
const verifyProgressEvery = time.Second

// VerifyAuditLog implements ConsoleService.VerifyAuditLog: the relay,
// which holds the key, walks the whole log (package relay/audit) and
// streams progress about once a second, then the result. The check is
// audited with its outcome.
func (c *consoleService) VerifyAuditLog(_ *desksidev1.VerifyAuditLogRequest, stream desksidev1.ConsoleService_VerifyAuditLogServer) error {
	ctx := stream.Context()
	last := c.s.cfg.Now()
	var sendErr error
	rep, err := c.s.auditLog.Verify(ctx, func(checked int64, e store.AuditEvent) {
		if now := c.s.cfg.Now(); sendErr == nil && now.Sub(last) >= verifyProgressEvery {
			last = now
			sendErr = stream.Send(&desksidev1.VerifyAuditLogResponse{Checked: checked, LastSeq: e.Seq, LastTime: timestamppb.New(e.Time)})
		}
	})
	if sendErr != nil {
		return sendErr
	}
	if err != nil {
		return storeErr(err)
	}
	resp := &desksidev1.VerifyAuditLogResponse{
		Done: true, Checked: rep.Checked, Unkeyed: rep.Unkeyed, Anchor: rep.Anchor, KeyId: rep.KeyID,
	}
	if rep.Last.Seq > 0 {
		resp.LastSeq, resp.LastTime = rep.Last.Seq, timestamppb.New(rep.Last.Time)
	}
	outcome := fmt.Sprintf("%d records verified", rep.Checked)
	if p := rep.Bad; p != nil {
		resp.Problem = &desksidev1.AuditProblem{Seq: p.Seq, Kind: p.Kind, Detail: p.Detail}
		if !p.Time.IsZero() {
			resp.Problem.Time = timestamppb.New(p.Time)
		}
		outcome = fmt.Sprintf("%d records verified, then %s", rep.Checked, p)
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "audit.verify", "", outcome)
	return stream.Send(resp)
}
