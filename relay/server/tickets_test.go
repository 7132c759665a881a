package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/diag"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

func wantTicketCode(t *testing.T, err error, want codes.Code, what string) {
	t.Helper()
	if status.Code(err) != want {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// ticketClient signs in as name and returns a TicketService client.
func ticketClient(t *testing.T, r *servertest.Relay, name, pw string) (desksidev1.TicketServiceClient, context.Context) {
	t.Helper()
	_, ctx := r.Console(t, name, pw)
	return desksidev1.NewTicketServiceClient(r.Dial(t)), ctx
}

// TestTickets runs the help-desk life of tickets through a real relay on
// each store: filing for a device (snapshot and what changed since),
// case-insensitive lookup, escalation with tier rules, claim, reply,
// resolve, reopen, links to a diagnostics run, merge, search, hostile
// input and the audit of every change.
func TestTickets(t *testing.T) {
	for _, c := range []struct {
		name string
		opts func(t *testing.T) servertest.Options
	}{
		{"sqlite", func(*testing.T) servertest.Options { return servertest.Options{} }},
		{"postgres", func(t *testing.T) servertest.Options { return servertest.Options{Database: pgtest.DSN(t)} }},
	} {
		t.Run(c.name, func(t *testing.T) { testTickets(t, servertest.Start(t, c.opts(t))) })
	}
}

func testTickets(t *testing.T, r *servertest.Relay) {
	inv := &fakeInventory{inv: sampleInventory()}
	st := r.Enroll(t, "ticket-host")
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inv, Health: fakeSampler{}, HealthInterval: 50 * time.Millisecond, Hostname: "ticket-host",
		Checks: diag.New(diag.Options{Logger: servertest.DiscardLogger()}),
	})
	dev := st.DeviceID
	servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if _, err := r.Srv.Store().GetInventory(t.Context(), dev); err != nil {
			return err
		}
		_, err := r.Srv.Store().LatestHealth(t.Context(), dev)
		return err
	})
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	addTechTo(t, r, "t2", "tier-two-password", desksidev1.Role_ROLE_TIER2)
	tc1, ctx1 := ticketClient(t, r, "t1", "tier-one-password")
	tc2, ctx2 := ticketClient(t, r, "t2", "tier-two-password")
	cs, actx := r.Admin(t)
	tca := desksidev1.NewTicketServiceClient(r.Dial(t))

	// Filed by tier 1 for the device: the snapshot is taken.
	created, err := tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{
		Requester: &desksidev1.TicketRequester{Name: "Grace Hopper", Email: "grace@example.com", DeviceId: dev},
		Subject:   "Outlook freezes\x1b]0;pwned\x07 on start", Description: "Since the update.\nEvery morning.\u202e",
		Category: "software", Priority: desksidev1.TicketPriority_TICKET_PRIORITY_HIGH,
	})
	if err != nil {
		t.Fatal(err)
	}
	tk := created.GetTicket()
	code := tk.GetCode()
	if !strings.HasPrefix(code, "DS-") || len(code) != 7 || strings.ContainsAny(code[3:], "0O1I") {
		t.Fatalf("code %q", code)
	}
	if tk.GetSubject() != "Outlook freezes on start" || tk.GetDescription() != "Since the update.\nEvery morning." {
		t.Errorf("hostile text not cleaned: %q / %q", tk.GetSubject(), tk.GetDescription())
	}
	if !tk.GetHasSnapshot() || tk.GetStatus() != desksidev1.TicketStatus_TICKET_STATUS_NEW || tk.GetTier() != 1 {
		t.Errorf("new ticket: %+v", tk)
	}
	left := tk.GetSla().GetFirstResponseLeft().AsDuration()
	if left <= 55*time.Minute || left > time.Hour || tk.GetSla().GetFirstResponseBreached() {
		t.Errorf("high priority first response left %v", left)
	}

	// Lookup in any spelling.
	for _, spelled := range []string{code, strings.ToLower(code), strings.ToLower(code[3:]), "ds " + code[3:]} {
		got, err := tc2.GetTicket(ctx2, &desksidev1.GetTicketRequest{Code: spelled})
		if err != nil || got.GetTicket().GetCode() != code {
			t.Fatalf("GetTicket(%q): %v", spelled, err)
		}
	}
	_, err = tc2.GetTicket(ctx2, &desksidev1.GetTicketRequest{Code: "DS-0OO1"})
	wantTicketCode(t, err, codes.InvalidArgument, "a code with 0/O/1")

	// The snapshot, then the device changes.
	cmp, err := tc1.CompareTicketSnapshot(ctx1, &desksidev1.CompareTicketSnapshotRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.GetChanges()) != 0 || cmp.GetSnapshot().GetInventory().GetMemory().GetTotalBytes() != 16<<30 || len(cmp.GetHealth()) != 3 {
		t.Fatalf("fresh snapshot: %v changes, snapshot %v, health %v", cmp.GetChanges(), cmp.GetSnapshot().GetInventory().GetMemory(), cmp.GetHealth())
	}
	newer := sampleInventory()
	newer.Memory.TotalBytes = 32 << 30
	newer.Os.Version = "13"
	newer.Software = []*desksidev1.Software{{Name: "outlook-fix", Version: "1.2"}}
	inv.Set(newer)
	if _, err := cs.RefreshInventory(actx, &desksidev1.RefreshInventoryRequest{Id: dev}); err != nil {
		t.Fatal(err)
	}
	servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		cmp, err = tc1.CompareTicketSnapshot(ctx1, &desksidev1.CompareTicketSnapshotRequest{Code: code})
		if err != nil {
			return err
		}
		if len(cmp.GetChanges()) < 3 {
			return errNotYet
		}
		return nil
	})
	changed := map[string][2]string{}
	for _, ch := range cmp.GetChanges() {
		changed[ch.GetField()] = [2]string{ch.GetFrom(), ch.GetTo()}
	}
	if changed["os.version"] != [2]string{"12", "13"} || changed["software[outlook-fix]"] != [2]string{"", "1.2"} || changed["memory.total"][1] == "" {
		t.Errorf("changes since filing: %v", changed)
	}

	// Escalation needs a reason and a tier; it lands unassigned in tier 2.
	_, err = tc1.EscalateTicket(ctx1, &desksidev1.EscalateTicketRequest{Code: code, Tier: 2})
	wantTicketCode(t, err, codes.InvalidArgument, "escalation without a reason")
	if _, err := tc1.AssignTicket(ctx1, &desksidev1.AssignTicketRequest{Code: code, Claim: true}); err != nil {
		t.Fatal(err)
	}
	esc, err := tc1.EscalateTicket(ctx1, &desksidev1.EscalateTicketRequest{Code: code, Tier: 2, Reason: "profile rebuild needs tier 2"})
	if err != nil {
		t.Fatal(err)
	}
	if esc.GetTicket().GetTier() != 2 || esc.GetTicket().GetAssignee() != "" || esc.GetTicket().GetStatus() != desksidev1.TicketStatus_TICKET_STATUS_OPEN {
		t.Errorf("escalated: %+v", esc.GetTicket())
	}
	// Tier 1 may no longer claim or change it, but may note it.
	_, err = tc1.AssignTicket(ctx1, &desksidev1.AssignTicketRequest{Code: code, Claim: true})
	wantTicketCode(t, err, codes.PermissionDenied, "tier 1 claiming a tier 2 ticket")
	auditHas(t, r, "t1", "access.denied", code)
	_, err = tc1.SetTicketStatus(ctx1, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_RESOLVED})
	wantTicketCode(t, err, codes.PermissionDenied, "tier 1 resolving a tier 2 ticket")
	if _, err := tc1.ReplyTicket(ctx1, &desksidev1.ReplyTicketRequest{Code: code, Text: "user says it froze again at 9", Internal: true}); err != nil {
		t.Fatal(err)
	}
	// Tier 2's queue has it; tier 1's does not.
	q2, err := tc2.ListTickets(ctx2, &desksidev1.ListTicketsRequest{Queue: desksidev1.TicketQueue_TICKET_QUEUE_TIER})
	if err != nil || len(q2.GetTickets()) != 1 || q2.GetTickets()[0].GetCode() != code {
		t.Fatalf("tier 2 queue: %v, %v", q2.GetTickets(), err)
	}
	q1, err := tc1.ListTickets(ctx1, &desksidev1.ListTicketsRequest{Queue: desksidev1.TicketQueue_TICKET_QUEUE_TIER})
	if err != nil || len(q1.GetTickets()) != 0 {
		t.Fatalf("tier 1 queue: %v, %v", q1.GetTickets(), err)
	}

	// Tier 2 claims, runs diagnostics, links them, replies and resolves.
	if _, err := tc2.AssignTicket(ctx2, &desksidev1.AssignTicketRequest{Code: code, Claim: true}); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Second)
	cs2 := desksidev1.NewConsoleServiceClient(r.Dial(t))
	if _, err := cs2.RunChecks(ctx2, &desksidev1.RunChecksRequest{DeviceId: dev, Checks: []string{"cpu.load"}}); err != nil {
		t.Fatal(err)
	}
	link, err := tc2.LinkTicket(ctx2, &desksidev1.LinkTicketRequest{Code: code, Kind: "diagnostics", DeviceId: dev, Since: timestamppb.New(since)})
	if err != nil {
		t.Fatal(err)
	}
	if link.GetLink().GetAction() != "checks.run" || link.GetLink().GetTarget() != dev || link.GetLink().GetAuditSeq() == 0 {
		t.Errorf("link: %+v", link.GetLink())
	}
	// Someone else's record is not tier 1's to link.
	_, err = tc1.LinkTicket(ctx1, &desksidev1.LinkTicketRequest{Code: code, AuditSeq: link.GetLink().GetAuditSeq()})
	wantTicketCode(t, err, codes.PermissionDenied, "linking another technician's record")

	if _, err := tc2.ReplyTicket(ctx2, &desksidev1.ReplyTicketRequest{Code: code, Text: "Rebuilt your mail profile; please try again."}); err != nil {
		t.Fatal(err)
	}
	res, err := tc2.SetTicketStatus(ctx2, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_RESOLVED})
	if err != nil || res.GetTicket().GetResolvedAt() == nil || res.GetTicket().GetSla().GetResolutionLeft() != nil {
		t.Fatalf("resolve: %v, %+v", err, res.GetTicket())
	}
	_, err = tc2.SetTicketStatus(ctx2, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_PENDING_USER})
	wantTicketCode(t, err, codes.FailedPrecondition, "resolved → pending user")
	reo, err := tc2.SetTicketStatus(ctx2, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_OPEN, Reason: "froze again"})
	if err != nil || reo.GetTicket().GetResolvedAt() != nil {
		t.Fatalf("reopen: %v", err)
	}

	// A duplicate filed by the requester's colleague, merged.
	dup, err := tca.CreateTicket(actx, &desksidev1.CreateTicketRequest{Subject: "Mail program hangs", Description: "Grace's Outlook again",
		Requester: &desksidev1.TicketRequester{DeviceId: dev}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tc2.MergeTicket(ctx2, &desksidev1.MergeTicketRequest{Code: dup.GetTicket().GetCode(), Into: code})
	if err != nil {
		t.Fatal(err)
	}
	if m.GetDuplicate().GetStatus() != desksidev1.TicketStatus_TICKET_STATUS_CLOSED || m.GetDuplicate().GetMergedInto() != code {
		t.Errorf("merged duplicate: %+v", m.GetDuplicate())
	}
	_, err = tc2.SetTicketStatus(ctx2, &desksidev1.SetTicketStatusRequest{Code: dup.GetTicket().GetCode(), Status: desksidev1.TicketStatus_TICKET_STATUS_OPEN})
	wantTicketCode(t, err, codes.FailedPrecondition, "reopening a merged duplicate")
	dt, err := tc1.GetTicket(ctx1, &desksidev1.GetTicketRequest{Code: dup.GetTicket().GetCode()})
	if err != nil || len(dt.GetTimeline()) < 2 {
		t.Fatalf("merged duplicate's timeline: %v, %v", dt.GetTimeline(), err)
	}

	// The timeline of the ticket, in order.
	full, err := tc1.GetTicket(ctx1, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range full.GetTimeline() {
		kinds = append(kinds, strings.TrimPrefix(e.GetKind().String(), "TICKET_ENTRY_KIND_"))
	}
	want := "CREATED ASSIGNEE STATUS TIER ASSIGNEE NOTE ASSIGNEE LINK REPLY STATUS STATUS MERGE"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("timeline:\n got %s\nwant %s", got, want)
	}
	if tier := full.GetTimeline()[3]; tier.GetBody() != "profile rebuild needs tier 2" || tier.GetAuthor() != "t1" || tier.GetFrom() != "1" || tier.GetTo() != "2" {
		t.Errorf("escalation entry: %+v", tier)
	}

	// Search: by word (subject first), by code, by a word of a reply; by device.
	s, err := tc1.ListTickets(ctx1, &desksidev1.ListTicketsRequest{Search: "outlook", Statuses: allStatuses()})
	if err != nil || len(s.GetTickets()) != 2 || s.GetTickets()[0].GetCode() != code {
		t.Fatalf("search outlook: %v, %v", codesOf(s.GetTickets()), err)
	}
	s, err = tc1.ListTickets(ctx1, &desksidev1.ListTicketsRequest{Search: strings.ToLower(dup.GetTicket().GetCode())})
	if err != nil || len(s.GetTickets()) != 1 || s.GetTickets()[0].GetCode() != dup.GetTicket().GetCode() {
		t.Fatalf("search by code: %v, %v", codesOf(s.GetTickets()), err)
	}
	s, err = tc1.ListTickets(ctx1, &desksidev1.ListTicketsRequest{Search: "profile rebuilt"})
	if err != nil || len(s.GetTickets()) != 1 {
		t.Fatalf("search in a reply: %v, %v", codesOf(s.GetTickets()), err)
	}
	s, err = tc1.ListTickets(ctx1, &desksidev1.ListTicketsRequest{DeviceId: dev, Statuses: allStatuses()})
	if err != nil || s.GetTotal() != 2 || s.GetTotalCapped() {
		t.Fatalf("device history: %v, %v", codesOf(s.GetTickets()), err)
	}
	// The list names the device (one lookup for the page), and so does one ticket.
	for _, tk := range s.GetTickets() {
		if got := tk.GetRequester().GetDeviceHostname(); got != "ticket-host" {
			t.Errorf("%s lists device %s as %q, want ticket-host", tk.GetCode(), dev, got)
		}
	}
	if g, err := tc1.GetTicket(ctx1, &desksidev1.GetTicketRequest{Code: s.GetTickets()[0].GetCode()}); err != nil || g.GetTicket().GetRequester().GetDeviceHostname() != "ticket-host" {
		t.Errorf("GetTicket's device hostname: %q, %v", g.GetTicket().GetRequester().GetDeviceHostname(), err)
	}
	// Tickets about a device outside a technician's groups are not theirs
	// to see (TestTicketsFollowDeviceGroups has the rest).
	if _, err := cs.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: dev, Group: "lab"}); err != nil {
		t.Fatal(err)
	}
	addTechTo(t, r, "t1g", "tier-one-grouped-password", desksidev1.Role_ROLE_TIER1)
	techs := desksidev1.NewTechnicianServiceClient(r.Dial(t))
	if _, err := techs.UpdateTechnician(actx, &desksidev1.UpdateTechnicianRequest{Name: "t1g", SetGroups: true, Groups: []string{"office"}}); err != nil {
		t.Fatal(err)
	}
	tcg, ctxg := ticketClient(t, r, "t1g", "tier-one-grouped-password")
	if g, err := tcg.ListTickets(ctxg, &desksidev1.ListTicketsRequest{DeviceId: dev, Statuses: allStatuses()}); err != nil || len(g.GetTickets()) != 0 || g.GetTotal() != 0 {
		t.Errorf("a technician of another group sees %v, %v", g.GetTickets(), err)
	}
	if _, err := cs.SetDeviceGroup(actx, &desksidev1.SetDeviceGroupRequest{DeviceId: dev, Group: ""}); err != nil {
		t.Fatal(err)
	}
	// The assignee picker's list: enabled technicians of the tier and up,
	// for any technician.
	for _, c := range []struct {
		tier uint32
		want string
	}{{2, "admin:ROLE_ADMIN t2:ROLE_TIER2"}, {0, "admin:ROLE_ADMIN t1:ROLE_TIER1 t1g:ROLE_TIER1 t2:ROLE_TIER2"}} {
		as, err := techs.ListAssignees(ctx1, &desksidev1.ListAssigneesRequest{Tier: c.tier})
		if err != nil {
			t.Fatalf("ListAssignees as tier 1: %v", err)
		}
		var got []string
		for _, a := range as.GetAssignees() {
			got = append(got, a.GetName()+":"+a.GetRole().String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("ListAssignees tier %d: %v, want %s", c.tier, got, c.want)
		}
	}
	_, err = techs.ListAssignees(ctx1, &desksidev1.ListAssigneesRequest{Tier: 4})
	wantTicketCode(t, err, codes.InvalidArgument, "ListAssignees tier 4")

	// Hostile input.
	_, err = tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{Subject: "x", Description: strings.Repeat("A", 64<<10)})
	wantTicketCode(t, err, codes.InvalidArgument, "oversized description")
	if !strings.Contains(status.Convert(err).Message(), "at most 32768") {
		t.Errorf("oversized description error: %v", err)
	}
	_, err = tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{Subject: strings.Repeat("s", 300)})
	wantTicketCode(t, err, codes.InvalidArgument, "oversized subject")
	_, err = tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{Subject: "\x1b[2J\x07"})
	wantTicketCode(t, err, codes.InvalidArgument, "a subject of control characters only")
	_, err = tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{Subject: "x", Requester: &desksidev1.TicketRequester{Email: "a@b\r\nBcc: x@y"}})
	wantTicketCode(t, err, codes.InvalidArgument, "an email with a header injection")
	_, err = tc1.CreateTicket(ctx1, &desksidev1.CreateTicketRequest{Subject: "x", Requester: &desksidev1.TicketRequester{DeviceId: "no-such-device"}})
	wantTicketCode(t, err, codes.NotFound, "an unknown device")

	// SLA settings: admins only.
	_, err = tc1.SetTicketSettings(ctx1, &desksidev1.SetTicketSettingsRequest{})
	wantTicketCode(t, err, codes.PermissionDenied, "tier 1 changing the SLA")

	// Every change audited.
	for _, a := range []struct{ actor, action string }{
		{"t1", "ticket.create"}, {"t1", "ticket.claim"}, {"t1", "ticket.escalate"}, {"t1", "ticket.note"}, {"t2", "ticket.claim"},
		{"t2", "ticket.link"}, {"t2", "ticket.reply"}, {"t2", "ticket.status"}, {"t2", "ticket.merge"},
	} {
		tgt := code
		if a.action == "ticket.merge" {
			tgt = dup.GetTicket().GetCode()
		}
		auditHas(t, r, a.actor, a.action, tgt)
	}
}

func allStatuses() []desksidev1.TicketStatus {
	return []desksidev1.TicketStatus{1, 2, 3, 4, 5}
}

func codesOf(ts []*desksidev1.Ticket) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.GetCode())
	}
	return out
}

// TestTicketsScaleOut runs two relays on one PostgreSQL and one NATS: a
// technician watching on relay B sees a ticket filed on relay A within
// 2 s, and its escalation.
func TestTicketsScaleOut(t *testing.T) {
	dsn := pgtest.DSN(t)
	natsURL := natstest.URL(t)
	prefix := natstest.Prefix()
	a, b := servertest.StartPair(t, servertest.Options{Database: dsn, NATSURL: natsURL, NATSPrefix: prefix})

	tcB, ctxB := ticketClient(t, b, "admin", servertest.AdminPassword)
	wctx, stop := context.WithCancel(ctxB)
	defer stop()
	watch, err := tcB.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // live
		t.Fatal(err)
	}
	events := make(chan *desksidev1.WatchTicketsResponse, 16)
	go func() {
		defer close(events)
		for {
			ev, err := watch.Recv()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	next := func(what string) *desksidev1.WatchTicketsResponse {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended before %s", what)
			}
			return ev
		case <-time.After(2 * time.Second):
			t.Fatalf("no %s on relay B within 2 s", what)
		}
		return nil
	}

	tcA, ctxA := ticketClient(t, a, "admin", servertest.AdminPassword)
	start := time.Now()
	c, err := tcA.CreateTicket(ctxA, &desksidev1.CreateTicketRequest{Subject: "Scanner offline"})
	if err != nil {
		t.Fatal(err)
	}
	ev := next("created event")
	if ev.GetKind() != desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED || ev.GetTicket().GetCode() != c.GetTicket().GetCode() ||
		ev.GetTicket().GetSubject() != "Scanner offline" {
		t.Fatalf("event %v", ev)
	}
	t.Logf("filed on A, seen on B after %v", time.Since(start))
	if _, err := tcA.EscalateTicket(ctxA, &desksidev1.EscalateTicketRequest{Code: c.GetTicket().GetCode(), Tier: 3, Reason: "needs the network team"}); err != nil {
		t.Fatal(err)
	}
	ev = next("escalation event")
	if ev.GetKind() != desksidev1.TicketEventKind_TICKET_EVENT_KIND_UPDATED || ev.GetTicket().GetTier() != 3 {
		t.Fatalf("event %v", ev)
	}
}
