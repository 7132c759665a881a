package server

// TicketService: the RPC adapter of relay/tickets. The domain decides;
// this file authenticates (the caller), converts, audits every change and
// announces it to WatchTickets on every relay.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/tickets"
)

type ticketService struct {
	desksidev1.UnimplementedTicketServiceServer
	s *Server
}

// Ticket list pages.
const (
	defaultTicketPage = 50
	maxTicketPage     = 500
)

// Ticket event kinds as announced on the bus.
const (
	ticketCreated = "created"
	ticketUpdated = "updated"
)

func actorOf(ctx context.Context) tickets.Actor {
	c := callerFrom(ctx)
	return tickets.Actor{Name: c.Name, Role: desksidev1.Role(c.Role)}
}

// ticketErr is the console status of a tickets error; refusals are
// audited.
func (c *ticketService) ticketErr(ctx context.Context, action, code string, err error) error {
	switch {
	case errors.Is(err, tickets.ErrInvalid):
		return status.Error(codes.InvalidArgument, strings.TrimPrefix(err.Error(), "tickets: "))
	case errors.Is(err, tickets.ErrNotFound):
		return status.Error(codes.NotFound, strings.TrimPrefix(err.Error(), "tickets: "))
	case errors.Is(err, tickets.ErrForbidden):
		c.s.audit(ctx, callerFrom(ctx).Name, "access.denied", code, action+": "+err.Error())
		return status.Error(codes.PermissionDenied, strings.TrimPrefix(err.Error(), "tickets: "))
	case errors.Is(err, tickets.ErrState):
		return status.Error(codes.FailedPrecondition, strings.TrimPrefix(err.Error(), "tickets: "))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return storeErr(err)
}

// scoped refuses, as if it did not exist, the ticket of code when it is
// about a device outside the caller's groups (see scope.go).
func (c *ticketService) scoped(ctx context.Context, action, code string) error {
	if c.s.deviceScope(ctx) == nil {
		return nil
	}
	t, err := c.s.tickets.Lookup(ctx, code)
	if err != nil {
		return c.ticketErr(ctx, action, code, err)
	}
	ok, err := c.s.ticketInScope(ctx, t)
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		return c.ticketErr(ctx, action, code, tickets.NoTicket(t.Code))
	}
	return nil
}

// ticketProto converts a ticket, with its SLA at now.
func ticketProto(t store.Ticket, sla tickets.SLA, now time.Time) *desksidev1.Ticket {
	ts := func(x time.Time) *timestamppb.Timestamp {
		if x.IsZero() {
			return nil
		}
		return timestamppb.New(x)
	}
	dur := func(d *time.Duration) *durationpb.Duration {
		if d == nil {
			return nil
		}
		return durationpb.New(*d)
	}
	st := sla.State(t, now)
	return &desksidev1.Ticket{
		Code:      t.Code,
		Requester: &desksidev1.TicketRequester{Name: t.RequesterName, Email: t.RequesterEmail, DeviceId: t.DeviceID},
		Subject:   t.Subject, Description: t.Description, Category: t.Category,
		Priority: desksidev1.TicketPriority(t.Priority), Status: desksidev1.TicketStatus(t.Status), Tier: uint32(t.Tier),
		Assignee: t.Assignee, CreatedBy: t.CreatedBy, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
		FirstResponseAt: ts(t.FirstResponseAt), ResolvedAt: ts(t.ResolvedAt), ClosedAt: ts(t.ClosedAt), MergedInto: t.MergedInto,
		HasSnapshot: t.HasSnapshot,
		Sla: &desksidev1.TicketSla{
			FirstResponseDue: ts(st.FirstResponseDue), ResolutionDue: ts(st.ResolutionDue),
			FirstResponseLeft: dur(st.FirstResponseLeft), ResolutionLeft: dur(st.ResolutionLeft),
			FirstResponseBreached: st.FirstResponseBreached, ResolutionBreached: st.ResolutionBreached,
		},
	}
}

func entryProto(e store.TicketEntry) *desksidev1.TicketEntry {
	p := &desksidev1.TicketEntry{Id: e.ID, Time: timestamppb.New(e.Time), Author: e.Author,
		Kind: desksidev1.TicketEntryKind(e.Kind), Body: e.Body, From: e.From, To: e.To}
	if e.LinkSeq != 0 {
		p.Link = &desksidev1.TicketLink{Kind: e.LinkKind, AuditSeq: e.LinkSeq, Action: e.LinkAction, Target: e.LinkTarget}
	}
	return p
}

// ticket converts t with the relay's current SLA.
func (c *ticketService) ticket(ctx context.Context, t store.Ticket) (*desksidev1.Ticket, error) {
	sla, err := c.s.tickets.SLA(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	return ticketProto(t, sla, c.s.cfg.Now()), nil
}

// changed audits a change, announces it and converts the ticket.
func (c *ticketService) changed(ctx context.Context, action string, t store.Ticket, detail string) (*desksidev1.Ticket, error) {
	return c.changedText(ctx, action, t, detail, "")
}

// changedText is changed, with the text notifications show (a public
// reply, an escalation's reason).
func (c *ticketService) changedText(ctx context.Context, action string, t store.Ticket, detail, text string) (*desksidev1.Ticket, error) {
	c.s.audit(ctx, callerFrom(ctx).Name, action, t.Code, detail)
	c.s.notifyTicket(ctx, action, t, text)
	c.s.helpChanged(action, t)
	kind := ticketUpdated
	if action == "ticket.create" {
		kind = ticketCreated
	}
	c.s.ticketChanged(ctx, kind, t.Code)
	return c.ticket(ctx, t)
}

// CreateTicket implements TicketService.CreateTicket.
func (c *ticketService) CreateTicket(ctx context.Context, req *desksidev1.CreateTicketRequest) (*desksidev1.CreateTicketResponse, error) {
	r := req.GetRequester()
	if id := r.GetDeviceId(); id != "" {
		// A device outside the caller's groups is answered as missing,
		// as tickets.Create answers a missing one.
		if d, err := c.s.store.GetDevice(ctx, id); err == nil && !c.s.deviceInScope(ctx, d) {
			return nil, c.ticketErr(ctx, "ticket.create", "", fmt.Errorf("%w: no device %q (see `deskside devices list`)", tickets.ErrNotFound, id))
		}
	}
	t, err := c.s.tickets.Create(ctx, actorOf(ctx), tickets.NewTicket{
		RequesterName: r.GetName(), RequesterEmail: r.GetEmail(), DeviceID: r.GetDeviceId(),
		Subject: req.GetSubject(), Description: req.GetDescription(), Category: req.GetCategory(),
		Priority: int(req.GetPriority()), Tier: int(req.GetTier()),
	})
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.create", "", err)
	}
	detail := fmt.Sprintf("%q, %s, tier %d", t.Subject, strings.ToLower(strings.TrimPrefix(desksidev1.TicketPriority(t.Priority).String(), "TICKET_PRIORITY_")), t.Tier)
	if t.DeviceID != "" {
		detail += ", device " + t.DeviceID
	}
	p, err := c.changed(ctx, "ticket.create", t, detail)
	if err != nil {
		return nil, err
	}
	return &desksidev1.CreateTicketResponse{Ticket: p}, nil
}

// GetTicket implements TicketService.GetTicket.
func (c *ticketService) GetTicket(ctx context.Context, req *desksidev1.GetTicketRequest) (*desksidev1.GetTicketResponse, error) {
	if err := c.scoped(ctx, "ticket.get", req.GetCode()); err != nil {
		return nil, err
	}
	t, es, err := c.s.tickets.Get(ctx, req.GetCode())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.get", req.GetCode(), err)
	}
	p, err := c.ticket(ctx, t)
	if err != nil {
		return nil, err
	}
	if t.DeviceID != "" {
		// The caller may see the ticket, so its device (scoped above).
		if d, err := c.s.store.GetDevice(ctx, t.DeviceID); err == nil {
			p.Requester.DeviceHostname = d.Hostname
		}
	}
	resp := &desksidev1.GetTicketResponse{Ticket: p}
	for _, e := range es {
		resp.Timeline = append(resp.Timeline, entryProto(e))
	}
	return resp, nil
}

// ListTickets implements TicketService.ListTickets.
func (c *ticketService) ListTickets(ctx context.Context, req *desksidev1.ListTicketsRequest) (*desksidev1.ListTicketsResponse, error) {
	q := tickets.Query{Queue: req.GetQueue(), Category: req.GetCategory(), DeviceID: req.GetDeviceId(), Assignee: req.GetAssignee(),
		Tier: int(req.GetTier()), Groups: c.s.deviceScope(ctx), Search: req.GetSearch(), Limit: clampLimit(req.GetLimit(), defaultTicketPage, maxTicketPage),
		Offset: int(req.GetOffset())}
	for _, s := range req.GetStatuses() {
		q.Statuses = append(q.Statuses, int(s))
	}
	for _, p := range req.GetPriorities() {
		q.Priorities = append(q.Priorities, int(p))
	}
	ts, total, err := c.s.tickets.List(ctx, actorOf(ctx), q)
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.list", "", err)
	}
	sla, err := c.s.tickets.SLA(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	now := c.s.cfg.Now()
	resp := &desksidev1.ListTicketsResponse{Total: total}
	if total > tickets.MaxCount {
		resp.Total, resp.TotalCapped = tickets.MaxCount, true
	}
	// The device's hostname comes with the page (the store looks the
	// page's devices up at once), only for devices in the caller's scope.
	scope := c.s.deviceScope(ctx)
	for _, t := range ts {
		if _, byCode := tickets.NormalizeCode(q.Search); q.Groups != nil && byCode {
			// The store kept only the caller's tickets; one found by its
			// code was not filtered.
			if ok, err := c.s.ticketInScope(ctx, t); err != nil {
				return nil, storeErr(err)
			} else if !ok {
				resp.Total--
				continue
			}
		}
		p := ticketProto(t, sla, now)
		if t.DeviceHostname != "" && inScope(scope, t.DeviceGroup) {
			p.Requester.DeviceHostname = t.DeviceHostname
		}
		resp.Tickets = append(resp.Tickets, p)
	}
	return resp, nil
}

// ReplyTicket implements TicketService.ReplyTicket.
func (c *ticketService) ReplyTicket(ctx context.Context, req *desksidev1.ReplyTicketRequest) (*desksidev1.ReplyTicketResponse, error) {
	action := "ticket.reply"
	if req.GetInternal() {
		action = "ticket.note"
	}
	if err := c.scoped(ctx, action, req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.Reply(ctx, actorOf(ctx), req.GetCode(), req.GetText(), req.GetInternal())
	if err != nil {
		return nil, c.ticketErr(ctx, action, req.GetCode(), err)
	}
	text := ""
	if !req.GetInternal() {
		text = req.GetText()
	}
	p, err := c.changedText(ctx, action, t, fmt.Sprintf("%d bytes", len(req.GetText())), text)
	if err != nil {
		return nil, err
	}
	return &desksidev1.ReplyTicketResponse{Ticket: p}, nil
}

// SetTicketStatus implements TicketService.SetTicketStatus.
func (c *ticketService) SetTicketStatus(ctx context.Context, req *desksidev1.SetTicketStatusRequest) (*desksidev1.SetTicketStatusResponse, error) {
	if err := c.scoped(ctx, "ticket.status", req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.SetStatus(ctx, actorOf(ctx), req.GetCode(), int(req.GetStatus()), req.GetReason())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.status", req.GetCode(), err)
	}
	p, err := c.changed(ctx, "ticket.status", t, tickets.StatusName(t.Status))
	if err != nil {
		return nil, err
	}
	return &desksidev1.SetTicketStatusResponse{Ticket: p}, nil
}

// UpdateTicket implements TicketService.UpdateTicket.
func (c *ticketService) UpdateTicket(ctx context.Context, req *desksidev1.UpdateTicketRequest) (*desksidev1.UpdateTicketResponse, error) {
	if err := c.scoped(ctx, "ticket.update", req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.Update(ctx, actorOf(ctx), req.GetCode(), int(req.GetPriority()), req.Category)
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.update", req.GetCode(), err)
	}
	p, err := c.changed(ctx, "ticket.update", t, fmt.Sprintf("priority %s, category %q",
		strings.ToLower(strings.TrimPrefix(desksidev1.TicketPriority(t.Priority).String(), "TICKET_PRIORITY_")), t.Category))
	if err != nil {
		return nil, err
	}
	return &desksidev1.UpdateTicketResponse{Ticket: p}, nil
}

// EscalateTicket implements TicketService.EscalateTicket.
func (c *ticketService) EscalateTicket(ctx context.Context, req *desksidev1.EscalateTicketRequest) (*desksidev1.EscalateTicketResponse, error) {
	if err := c.scoped(ctx, "ticket.escalate", req.GetCode()); err != nil {
		return nil, err
	}
	before, _ := c.s.tickets.Lookup(ctx, req.GetCode())
	t, err := c.s.tickets.Escalate(ctx, actorOf(ctx), req.GetCode(), int(req.GetTier()), req.GetReason())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.escalate", req.GetCode(), err)
	}
	action := "ticket.escalate"
	if t.Tier < before.Tier {
		action = "ticket.deescalate"
	}
	p, err := c.changedText(ctx, action, t, fmt.Sprintf("tier %d → %d: %s", before.Tier, t.Tier, req.GetReason()), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &desksidev1.EscalateTicketResponse{Ticket: p}, nil
}

// AssignTicket implements TicketService.AssignTicket.
func (c *ticketService) AssignTicket(ctx context.Context, req *desksidev1.AssignTicketRequest) (*desksidev1.AssignTicketResponse, error) {
	action := "ticket.assign"
	if req.GetClaim() {
		action = "ticket.claim"
	}
	if err := c.scoped(ctx, action, req.GetCode()); err != nil {
		return nil, err
	}
	t, err := c.s.tickets.Assign(ctx, actorOf(ctx), req.GetCode(), req.GetTechnician(), req.GetClaim())
	if err != nil {
		return nil, c.ticketErr(ctx, action, req.GetCode(), err)
	}
	detail := "unassigned"
	if t.Assignee != "" {
		detail = "to " + t.Assignee
	}
	p, err := c.changed(ctx, action, t, detail)
	if err != nil {
		return nil, err
	}
	return &desksidev1.AssignTicketResponse{Ticket: p}, nil
}

// MergeTicket implements TicketService.MergeTicket.
func (c *ticketService) MergeTicket(ctx context.Context, req *desksidev1.MergeTicketRequest) (*desksidev1.MergeTicketResponse, error) {
	for _, code := range []string{req.GetCode(), req.GetInto()} {
		if err := c.scoped(ctx, "ticket.merge", code); err != nil {
			return nil, err
		}
	}
	dup, target, err := c.s.tickets.Merge(ctx, actorOf(ctx), req.GetCode(), req.GetInto())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.merge", req.GetCode(), err)
	}
	d, err := c.changed(ctx, "ticket.merge", dup, "into "+target.Code)
	if err != nil {
		return nil, err
	}
	c.s.ticketChanged(ctx, ticketUpdated, target.Code)
	tp, err := c.ticket(ctx, target)
	if err != nil {
		return nil, err
	}
	return &desksidev1.MergeTicketResponse{Duplicate: d, Ticket: tp}, nil
}

// LinkTicket implements TicketService.LinkTicket.
func (c *ticketService) LinkTicket(ctx context.Context, req *desksidev1.LinkTicketRequest) (*desksidev1.LinkTicketResponse, error) {
	if err := c.scoped(ctx, "ticket.link", req.GetCode()); err != nil {
		return nil, err
	}
	var since time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	t, e, err := c.s.tickets.Link(ctx, actorOf(ctx), req.GetCode(), tickets.LinkRequest{
		Seq: req.GetAuditSeq(), Kind: req.GetKind(), DeviceID: req.GetDeviceId(), Since: since})
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.link", req.GetCode(), err)
	}
	p, err := c.changed(ctx, "ticket.link", t, fmt.Sprintf("%s: audit record %d (%s on %s)", e.LinkKind, e.LinkSeq, e.LinkAction, e.LinkTarget))
	if err != nil {
		return nil, err
	}
	return &desksidev1.LinkTicketResponse{Ticket: p, Link: entryProto(e).GetLink()}, nil
}

// CompareTicketSnapshot implements TicketService.CompareTicketSnapshot.
func (c *ticketService) CompareTicketSnapshot(ctx context.Context, req *desksidev1.CompareTicketSnapshotRequest) (*desksidev1.CompareTicketSnapshotResponse, error) {
	if err := c.scoped(ctx, "ticket.snapshot", req.GetCode()); err != nil {
		return nil, err
	}
	t, snap, err := c.s.tickets.Snapshot(ctx, req.GetCode())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.snapshot", req.GetCode(), err)
	}
	if snap == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s has no device snapshot: it was filed without a device, or the device had reported nothing yet", t.Code)
	}
	resp := &desksidev1.CompareTicketSnapshotResponse{DeviceId: t.DeviceID, TakenAt: snap.GetTakenAt(), Snapshot: snap}
	inv, err := c.s.store.GetInventory(ctx, t.DeviceID)
	if err == nil {
		cur := new(desksidev1.Inventory)
		if err := proto.Unmarshal(inv.Data, cur); err != nil {
			return nil, status.Errorf(codes.DataLoss, "stored inventory of %s is unreadable: %v", t.DeviceID, err)
		}
		resp.CurrentAt = timestamppb.New(inv.CollectedAt)
		if snap.GetInventory() != nil {
			for _, ch := range DiffInventory(snap.GetInventory(), cur) {
				resp.Changes = append(resp.Changes, &desksidev1.InventoryChange{Field: ch.Field, From: ch.From, To: ch.To})
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, storeErr(err)
	}
	var now *desksidev1.HealthSample
	if hs, err := c.s.store.LatestHealth(ctx, t.DeviceID); err == nil && len(hs.Detail) > 0 {
		now = new(desksidev1.HealthSample)
		if err := proto.Unmarshal(hs.Detail, now); err != nil {
			now = nil
		}
	}
	resp.Health = compareHealth(snap.GetHealth(), now)
	return resp, nil
}

// compareHealth sets the health values technicians look at side by side.
func compareHealth(then, now *desksidev1.HealthSample) []*desksidev1.HealthComparison {
	if then == nil && now == nil {
		return nil
	}
	show := func(h *desksidev1.HealthSample, f func(*desksidev1.HealthSample) string) string {
		if h == nil {
			return "—"
		}
		return f(h)
	}
	fullest := func(h *desksidev1.HealthSample) string {
		var best *desksidev1.MountUsage
		for _, m := range h.GetMounts() {
			if best == nil || m.GetUsedPercent() > best.GetUsedPercent() {
				best = m
			}
		}
		if best == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f %% (%s)", best.GetUsedPercent(), best.GetMountpoint())
	}
	var out []*desksidev1.HealthComparison
	for _, c := range []struct {
		name string
		f    func(*desksidev1.HealthSample) string
	}{
		{"cpu", func(h *desksidev1.HealthSample) string { return fmt.Sprintf("%.0f %%", h.GetCpuPercent()) }},
		{"memory used", func(h *desksidev1.HealthSample) string {
			return FormatBytes(h.GetMemUsedBytes()) + " of " + FormatBytes(h.GetMemTotalBytes())
		}},
		{"fullest disk", fullest},
	} {
		out = append(out, &desksidev1.HealthComparison{Name: c.name, Then: show(then, c.f), Now: show(now, c.f)})
	}
	return out
}

// GetTicketSettings implements TicketService.GetTicketSettings.
func (c *ticketService) GetTicketSettings(ctx context.Context, _ *desksidev1.GetTicketSettingsRequest) (*desksidev1.GetTicketSettingsResponse, error) {
	sla, err := c.s.tickets.SLA(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	mail, err := c.s.mailConfigured(ctx)
	if err != nil {
		return nil, err
	}
	return &desksidev1.GetTicketSettingsResponse{Settings: sla.Proto(), MailConfigured: mail}, nil
}

// SetTicketSettings implements TicketService.SetTicketSettings.
func (c *ticketService) SetTicketSettings(ctx context.Context, req *desksidev1.SetTicketSettingsRequest) (*desksidev1.SetTicketSettingsResponse, error) {
	sla, err := c.s.tickets.SetSLA(ctx, req.GetSettings())
	if err != nil {
		return nil, c.ticketErr(ctx, "ticket.settings", "", err)
	}
	var parts []string
	for _, t := range sla.Proto().GetSla() {
		parts = append(parts, fmt.Sprintf("%s %s/%s", strings.ToLower(strings.TrimPrefix(t.GetPriority().String(), "TICKET_PRIORITY_")),
			t.GetFirstResponse().AsDuration(), t.GetResolution().AsDuration()))
	}
	c.s.audit(ctx, callerFrom(ctx).Name, "ticket.settings", "sla", strings.Join(parts, ", "))
	return &desksidev1.SetTicketSettingsResponse{Settings: sla.Proto()}, nil
}

// WatchTickets implements TicketService.WatchTickets.
func (c *ticketService) WatchTickets(_ *desksidev1.WatchTicketsRequest, stream desksidev1.TicketService_WatchTicketsServer) error {
	sub := c.s.ticketEvents.subscribe()
	defer c.s.ticketEvents.unsubscribe(sub)
	ctx := stream.Context()
	// A first, empty message tells the client the watch is live.
	if err := stream.Send(&desksidev1.WatchTicketsResponse{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return revoked(ctx)
		case ev, ok := <-sub.ch:
			if !ok {
				if sub.lagged {
					return status.Error(codes.ResourceExhausted, "ticket watch fell behind; list tickets again and re-watch")
				}
				return status.Error(codes.Unavailable, "relay is shutting down")
			}
			// The scope is read per event: a change of the technician's
			// groups applies to the open watch (recheckCaller).
			if ev.group != nil && !inScope(c.s.deviceScope(ctx), *ev.group) {
				continue // a ticket about a device outside the caller's groups
			}
			if err := stream.Send(ev.resp); err != nil {
				return err
			}
		}
	}
}
