package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The help desk's tickets (TicketService): filing, queues, the timeline,
// replies, escalation, assignment, status and merging.

const ticketNewHelp = `
Files a ticket and prints its code (DS- and four characters, no 0/O or
1/I: easy to read over the phone). With --device, the device's inventory
and latest health are kept with the ticket as they are now, and
` + "`deskside ticket show CODE`" + ` lists what changed on it since.

Examples:
  deskside ticket new --subject "Outlook freezes on start" --device D --requester "Grace Hopper" --email grace@example.com
  deskside ticket new --subject "VPN drops" --priority high --description-file notes.txt`

const ticketShowHelp = `
Shows a ticket: requester, status, tier, assignee, the SLA time left
(first response and resolution; overdue ones are flagged), what changed
on its device since it was filed, and its timeline (replies, internal
notes, status, tier and assignee changes, linked diagnostics, commands,
actions and sessions, chat with the requester), and the files kept with
it (` + "`deskside ticket attachment`" + ` saves one). CODE may be typed in any case, with or without
"DS-".

Example:
  deskside ticket show ds-7k3q`

const ticketListHelp = `
Lists tickets, most urgent and oldest first: a queue (--queue mine, tier,
unassigned or all; default all), the active ones (new, open, pending)
unless --status says otherwise, filtered, or searched (--search: words in
the subject, description, replies and notes, subject matches first; or a
ticket code).

Examples:
  deskside ticket list --queue tier
  deskside ticket list --status resolved,closed --device D
  deskside ticket list --search "printer jam"`

const ticketReplyHelp = `
Adds a public reply (the requester sees it; the first one meets the
first-response target and opens a new ticket) or, with --internal, a note
for technicians only. The text is the arguments after CODE, or standard
input with "-".

Examples:
  deskside ticket reply DS-7K3Q "Rebuilt your mail profile; please try again."
  deskside ticket reply DS-7K3Q --internal "User is on leave until Monday"`

const ticketEscalateHelp = `
Moves a ticket to another tier's queue, unassigned: up (escalation) or
down (de-escalation). A reason is required and shows on the timeline.

Example:
  deskside ticket escalate DS-7K3Q --tier 2 --reason "needs a profile rebuild"`

const ticketClaimHelp = `
Assigns a ticket to you (it must be in your tier's queue or below). A new
ticket becomes open.

Example:
  deskside ticket claim DS-7K3Q`

const ticketAssignHelp = `
Assigns a ticket to a technician of its tier or above, or to no one with
--none.

Examples:
  deskside ticket assign DS-7K3Q alice
  deskside ticket assign DS-7K3Q --none`

const ticketStatusHelp = `
Moves a ticket to STATUS: open, pending (waiting for the requester),
resolved or closed. A resolved or closed ticket reopens with "open".

Examples:
  deskside ticket status DS-7K3Q pending --reason "waiting for the user to reboot"
  deskside ticket status DS-7K3Q resolved
  deskside ticket status DS-7K3Q open --reason "it came back"`

const ticketMergeHelp = `
Merges the duplicate CODE into another ticket: the duplicate is closed
with a link, both timelines say so, and the duplicate's stays readable.

Example:
  deskside ticket merge DS-9XYZ --into DS-7K3Q`

const ticketLinkHelp = `
Links a record of the audit log to a ticket's timeline: by its number
(--audit SEQ, your own records, anyone's for an admin), or your latest
diagnostics run, command, action or session on a device (--kind, --device,
--since). ` + "`deskside run D --ticket CODE -- …`" + ` links its command by itself.

Examples:
  deskside ticket link DS-7K3Q --kind diagnostics --device D
  deskside ticket link DS-7K3Q --audit 1234`

const ticketSLAHelp = `
Shows the SLA targets per priority (time to first response, time to
resolution), or sets some (admin): --set PRIORITY=FIRST/RESOLUTION with
Go durations (15m, 4h, 72h), repeatable.

Examples:
  deskside ticket sla
  deskside ticket sla --set urgent=15m/4h --set low=24h/168h`

// ticketUnary is unary for the TicketService.
func ticketUnary[Resp any](e *runEnv, call func(context.Context, desksidev1.TicketServiceClient) (Resp, error)) (Resp, error) {
	return unaryOn(e, desksidev1.NewTicketServiceClient, call)
}

func parsePriority(s string) (desksidev1.TicketPriority, error) {
	v, ok := desksidev1.TicketPriority_value["TICKET_PRIORITY_"+strings.ToUpper(strings.TrimSpace(s))]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unknown priority %q: low, normal, high or urgent", clean(s))
	}
	return desksidev1.TicketPriority(v), nil
}

func parseStatus(s string) (desksidev1.TicketStatus, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if n == "PENDING" {
		n = "PENDING_USER"
	}
	v, ok := desksidev1.TicketStatus_value["TICKET_STATUS_"+n]
	if !ok || v == 0 {
		return 0, fmt.Errorf("unknown status %q: new, open, pending, resolved or closed", clean(s))
	}
	return desksidev1.TicketStatus(v), nil
}

func statusWord(s desksidev1.TicketStatus) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.String(), "TICKET_STATUS_")), "_", " ")
}

func priorityWord(p desksidev1.TicketPriority) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "TICKET_PRIORITY_"))
}

// ticketCode parses the CODE argument and returns the rest.
func ticketCode(fs *flag.FlagSet, args []string) (string, []string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", nil, err
	}
	if len(pos) == 0 {
		return "", nil, errUsage(fs, "a ticket CODE is required (see `deskside ticket list`)")
	}
	return pos[0], pos[1:], nil
}

func noMore(fs *flag.FlagSet, rest []string) error {
	if len(rest) > 0 {
		return errUsage(fs, "unexpected arguments: %s", clean(strings.Join(rest, " ")))
	}
	return nil
}

func (e *runEnv) ticketNew(args []string) error {
	fs := e.flags("ticket new", ticketNewHelp)
	subject := fs.String("subject", "", "one line saying what is wrong (required)")
	desc := fs.String("description", "", "the details")
	descFile := fs.String("description-file", "", "read the details from `FILE` (\"-\": standard input)")
	device := fs.String("device", "", "the device `ID` the ticket concerns")
	requester := fs.String("requester", "", "who asked for help: `NAME`")
	mail := fs.String("email", "", "the requester's email `ADDRESS`")
	category := fs.String("category", "", "a category, e.g. hardware, software, network")
	prio := fs.String("priority", "normal", "low, normal, high or urgent")
	tier := fs.Uint("tier", 1, "the tier whose queue it starts in (1-3)")
	quiet := fs.Bool("q", false, "print only the code")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, pos); err != nil {
		return err
	}
	if strings.TrimSpace(*subject) == "" {
		return errUsage(fs, "--subject is required")
	}
	p, err := parsePriority(*prio)
	if err != nil {
		return errUsage(fs, "--priority: %v", err)
	}
	if *descFile != "" {
		if *desc != "" {
			return errUsage(fs, "give --description or --description-file, not both")
		}
		b, err := e.readText(*descFile)
		if err != nil {
			return err
		}
		*desc = b
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.CreateTicketResponse, error) {
		return tc.CreateTicket(ctx, &desksidev1.CreateTicketRequest{
			Requester: &desksidev1.TicketRequester{Name: *requester, Email: *mail, DeviceId: *device},
			Subject:   *subject, Description: *desc, Category: *category, Priority: p, Tier: uint32(*tier),
		})
	})
	if err != nil {
		return err
	}
	t := resp.GetTicket()
	if *quiet {
		_, err = fmt.Fprintln(e.stdout, clean(t.GetCode()))
		return err
	}
	fmt.Fprintf(e.stdout, "Filed %s: %s (%s, tier %d)\n", clean(t.GetCode()), clean(t.GetSubject()), priorityWord(t.GetPriority()), t.GetTier())
	if t.GetHasSnapshot() {
		fmt.Fprintf(e.stdout, "The device's inventory and health were kept with it.\n")
	}
	_, err = fmt.Fprintf(e.stdout, "Follow it with `deskside ticket show %s`.\n", clean(t.GetCode()))
	return err
}

// readText reads a file ("-": standard input), at most a little over a
// ticket's limit (the relay refuses more with a clear error).
func (e *runEnv) readText(path string) (string, error) {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	return string(b), err
}

// slaLeft renders an SLA target's state: "met", "2h left", "OVERDUE 15m".
func slaLeft(left *durationpb.Duration, breached bool) string {
	switch {
	case left == nil && breached:
		return "met late"
	case left == nil:
		return "met"
	case left.AsDuration() < 0:
		return "OVERDUE by " + roughDuration(-left.AsDuration())
	}
	return roughDuration(left.AsDuration()) + " left"
}

func (e *runEnv) ticketShow(args []string) error {
	fs := e.flags("ticket show", ticketShowHelp)
	asJSON := fs.Bool("json", false, "print the ticket and its timeline as JSON")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, rest); err != nil {
		return err
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	tc := desksidev1.NewTicketServiceClient(c.cc)
	resp, err := tc.GetTicket(ctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		return c.explain(err)
	}
	if *asJSON {
		return writeJSON(e.stdout, resp)
	}
	t := resp.GetTicket()
	now := e.now()
	fmt.Fprintf(e.stdout, "%s  %s\n", clean(t.GetCode()), clean(t.GetSubject()))
	assignee := t.GetAssignee()
	if assignee == "" {
		assignee = "nobody (see `deskside ticket claim`)"
	}
	req := t.GetRequester()
	who := strings.TrimSpace(req.GetName() + " " + angle(req.GetEmail()))
	sla := t.GetSla()
	device := req.GetDeviceId()
	if h := req.GetDeviceHostname(); h != "" && device != "" {
		device = h + " (" + device + ")"
	}
	pairs := [][2]string{
		{"Status", statusWord(t.GetStatus())},
		{"Priority", priorityWord(t.GetPriority())},
		{"Tier", strconv.Itoa(int(t.GetTier()))},
		{"Assignee", assignee},
		{"Requester", who},
		{"Device", device},
		{"Category", t.GetCategory()},
		{"Filed", fmtTime(t.GetCreatedAt().AsTime()) + " by " + t.GetCreatedBy() + " (" + ago(now, t.GetCreatedAt().AsTime()) + ")"},
		{"First response", slaLeft(sla.GetFirstResponseLeft(), sla.GetFirstResponseBreached()) + " (due " + fmtTime(sla.GetFirstResponseDue().AsTime()) + ")"},
		{"Resolution", slaLeft(sla.GetResolutionLeft(), sla.GetResolutionBreached()) + " (due " + fmtTime(sla.GetResolutionDue().AsTime()) + ")"},
	}
	if t.GetMergedInto() != "" {
		pairs = append(pairs, [2]string{"Merged into", t.GetMergedInto() + " (see `deskside ticket show " + t.GetMergedInto() + "`)"})
	}
	if err := kv(e.stdout, pairs); err != nil {
		return err
	}
	if d := t.GetDescription(); d != "" {
		fmt.Fprintln(e.stdout)
		for _, l := range strings.Split(d, "\n") {
			fmt.Fprintf(e.stdout, "  %s\n", clean(l))
		}
	}
	if t.GetHasSnapshot() {
		cmp, err := tc.CompareTicketSnapshot(ctx, &desksidev1.CompareTicketSnapshotRequest{Code: t.GetCode()})
		if err != nil {
			fmt.Fprintf(e.stdout, "\nDevice since filing: unavailable (%v)\n", c.explain(err))
		} else {
			e.printSnapshotDiff(cmp)
		}
	}
	fmt.Fprintln(e.stdout, "\nTimeline:")
	for _, en := range resp.GetTimeline() {
		fmt.Fprintf(e.stdout, "  %s  %-10s %s\n", fmtTime(en.GetTime().AsTime()), short(en.GetAuthor(), 10), entryText(en))
	}
	e.printAttachments(ctx, c, tc, t.GetCode())
	return nil
}

func angle(s string) string {
	if s == "" {
		return ""
	}
	return "<" + s + ">"
}

func (e *runEnv) printSnapshotDiff(cmp *desksidev1.CompareTicketSnapshotResponse) {
	fmt.Fprintf(e.stdout, "\nDevice %s since filing (%s):\n", clean(cmp.GetDeviceId()), ago(e.now(), cmp.GetTakenAt().AsTime()))
	if len(cmp.GetChanges()) == 0 {
		fmt.Fprintln(e.stdout, "  inventory unchanged")
	}
	for _, ch := range cmp.GetChanges() {
		switch {
		case ch.GetFrom() == "":
			fmt.Fprintf(e.stdout, "  + %s: %s\n", clean(ch.GetField()), clean(ch.GetTo()))
		case ch.GetTo() == "":
			fmt.Fprintf(e.stdout, "  - %s: %s\n", clean(ch.GetField()), clean(ch.GetFrom()))
		default:
			fmt.Fprintf(e.stdout, "  ~ %s: %s → %s\n", clean(ch.GetField()), clean(ch.GetFrom()), clean(ch.GetTo()))
		}
	}
	for _, h := range cmp.GetHealth() {
		fmt.Fprintf(e.stdout, "  %s: %s then, %s now\n", clean(h.GetName()), clean(h.GetThen()), clean(h.GetNow()))
	}
}

// entryText renders a timeline entry on one line (replies and notes may
// continue on the next lines, indented).
func entryText(en *desksidev1.TicketEntry) string {
	body := func(prefix string) string {
		lines := strings.Split(en.GetBody(), "\n")
		for i := range lines {
			lines[i] = clean(lines[i])
		}
		return prefix + strings.Join(lines, "\n"+strings.Repeat(" ", 34))
	}
	reason := ""
	if en.GetBody() != "" {
		reason = ": " + clean(en.GetBody())
	}
	orNobody := func(s string) string {
		if s == "" {
			return "nobody"
		}
		return clean(s)
	}
	switch en.GetKind() {
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CREATED:
		return "filed the ticket"
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY:
		return body("replied: ")
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_NOTE:
		return body("[internal] ")
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_STATUS:
		return "status " + clean(en.GetFrom()) + " → " + clean(en.GetTo()) + reason
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_TIER:
		verb := "escalated"
		if en.GetTo() < en.GetFrom() {
			verb = "de-escalated"
		}
		return verb + " tier " + clean(en.GetFrom()) + " → " + clean(en.GetTo()) + reason
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_ASSIGNEE:
		return "assignee " + orNobody(en.GetFrom()) + " → " + orNobody(en.GetTo())
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_PRIORITY:
		return "priority " + clean(en.GetFrom()) + " → " + clean(en.GetTo())
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CATEGORY:
		return "category " + orNobody(en.GetFrom()) + " → " + orNobody(en.GetTo())
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_LINK:
		l := en.GetLink()
		return fmt.Sprintf("linked %s on %s (audit #%d, %s)", clean(l.GetKind()), clean(l.GetTarget()), l.GetAuditSeq(), clean(l.GetAction()))
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT:
		return chatText(en, body)
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_MERGE:
		if en.GetTo() != "" {
			return "merged into " + clean(en.GetTo())
		}
		return "merged " + clean(en.GetFrom()) + " into this ticket"
	}
	return clean(en.GetKind().String())
}

func (e *runEnv) ticketList(args []string) error {
	fs := e.flags("ticket list", ticketListHelp)
	queue := fs.String("queue", "all", "mine, tier, unassigned or all")
	statuses := fs.String("status", "", "comma-separated statuses, or all (default: new,open,pending)")
	prios := fs.String("priority", "", "comma-separated priorities")
	category := fs.String("category", "", "only this category")
	device := fs.String("device", "", "only tickets of device `ID`")
	assignee := fs.String("assignee", "", "only tickets assigned to `NAME`")
	tier := fs.Uint("tier", 0, "only tickets in this tier (1-3)")
	search := fs.String("search", "", "`WORDS` in subject, description, replies and notes; or a ticket code")
	limit := fs.Int("limit", 50, "show at most this many (at most 500)")
	asJSON := fs.Bool("json", false, "print the tickets as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, pos); err != nil {
		return err
	}
	req := &desksidev1.ListTicketsRequest{Category: *category, DeviceId: *device, Assignee: *assignee, Tier: uint32(*tier),
		Search: *search, Limit: int32(*limit)}
	switch strings.ToLower(*queue) {
	case "all":
	case "mine":
		req.Queue = desksidev1.TicketQueue_TICKET_QUEUE_MINE
	case "tier":
		req.Queue = desksidev1.TicketQueue_TICKET_QUEUE_TIER
	case "unassigned":
		req.Queue = desksidev1.TicketQueue_TICKET_QUEUE_UNASSIGNED
	default:
		return errUsage(fs, "--queue %q: mine, tier, unassigned or all", clean(*queue))
	}
	if strings.EqualFold(*statuses, "all") {
		req.Statuses = []desksidev1.TicketStatus{1, 2, 3, 4, 5}
	} else if *statuses != "" {
		for _, s := range strings.Split(*statuses, ",") {
			st, err := parseStatus(s)
			if err != nil {
				return errUsage(fs, "--status: %v", err)
			}
			req.Statuses = append(req.Statuses, st)
		}
	}
	if *prios != "" {
		for _, s := range strings.Split(*prios, ",") {
			p, err := parsePriority(s)
			if err != nil {
				return errUsage(fs, "--priority: %v", err)
			}
			req.Priorities = append(req.Priorities, p)
		}
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.ListTicketsResponse, error) {
		return tc.ListTickets(ctx, req)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONArray(e.stdout, resp.GetTickets())
	}
	if len(resp.GetTickets()) == 0 {
		_, err := fmt.Fprintln(e.stdout, "No tickets match. File one with `deskside ticket new --subject TEXT`, or widen the list with --status all --queue all.")
		return err
	}
	var rows [][]string
	for _, t := range resp.GetTickets() {
		sla := t.GetSla()
		due := slaLeft(sla.GetResolutionLeft(), sla.GetResolutionBreached())
		if t.GetFirstResponseAt() == nil && sla.GetFirstResponseLeft() != nil {
			due = "reply " + slaLeft(sla.GetFirstResponseLeft(), sla.GetFirstResponseBreached())
		}
		if sla.GetFirstResponseBreached() || sla.GetResolutionBreached() {
			due = "! " + due
		}
		rows = append(rows, []string{t.GetCode(), statusWord(t.GetStatus()), priorityWord(t.GetPriority()), strconv.Itoa(int(t.GetTier())),
			orDash(t.GetAssignee()), due, t.GetSubject()})
	}
	if err := table(e.stdout, "", []string{"CODE", "STATUS", "PRIORITY", "TIER", "ASSIGNEE", "SLA", "SUBJECT"}, rows); err != nil {
		return err
	}
	if n := int64(len(resp.GetTickets())); resp.GetTotal() > n {
		more := ""
		if resp.GetTotalCapped() {
			more = "+" // the relay stops counting there
		}
		fmt.Fprintf(e.stdout, "(%d of %d%s; narrow the list or raise --limit)\n", n, resp.GetTotal(), more)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printTicketChange prints a ticket's state after a change.
func (e *runEnv) printTicketChange(what string, t *desksidev1.Ticket) error {
	assignee := t.GetAssignee()
	if assignee == "" {
		assignee = "unassigned"
	}
	_, err := fmt.Fprintf(e.stdout, "%s %s: %s, tier %d, %s.\n", what, clean(t.GetCode()), statusWord(t.GetStatus()), t.GetTier(), clean(assignee))
	return err
}

func (e *runEnv) ticketReply(args []string) error {
	fs := e.flags("ticket reply", ticketReplyHelp)
	internal := fs.Bool("internal", false, "an internal note for technicians, not a reply the requester sees")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	text := strings.Join(rest, " ")
	if text == "-" {
		if text, err = e.readText("-"); err != nil {
			return err
		}
	}
	if strings.TrimSpace(text) == "" {
		return errUsage(fs, "the reply TEXT is required (\"-\" reads it from standard input)")
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.ReplyTicketResponse, error) {
		return tc.ReplyTicket(ctx, &desksidev1.ReplyTicketRequest{Code: code, Text: text, Internal: *internal})
	})
	if err != nil {
		return err
	}
	what := "Replied to"
	if *internal {
		what = "Noted on"
	}
	return e.printTicketChange(what, resp.GetTicket())
}

func (e *runEnv) ticketEscalate(args []string) error {
	fs := e.flags("ticket escalate", ticketEscalateHelp)
	tier := fs.Uint("tier", 0, "the tier to move it to (1-3; required)")
	reason := fs.String("reason", "", "why (required)")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, rest); err != nil {
		return err
	}
	if *tier < 1 || *tier > 3 {
		return errUsage(fs, "--tier 1, 2 or 3 is required")
	}
	if strings.TrimSpace(*reason) == "" {
		return errUsage(fs, "--reason is required: say what was tried and why it moves")
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.EscalateTicketResponse, error) {
		return tc.EscalateTicket(ctx, &desksidev1.EscalateTicketRequest{Code: code, Tier: uint32(*tier), Reason: *reason})
	})
	if err != nil {
		return err
	}
	return e.printTicketChange("Moved", resp.GetTicket())
}

func (e *runEnv) ticketClaim(args []string) error {
	fs := e.flags("ticket claim", ticketClaimHelp)
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, rest); err != nil {
		return err
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.AssignTicketResponse, error) {
		return tc.AssignTicket(ctx, &desksidev1.AssignTicketRequest{Code: code, Claim: true})
	})
	if err != nil {
		return err
	}
	return e.printTicketChange("Claimed", resp.GetTicket())
}

func (e *runEnv) ticketAssign(args []string) error {
	fs := e.flags("ticket assign", ticketAssignHelp)
	none := fs.Bool("none", false, "assign it to no one")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	var name string
	switch {
	case *none && len(rest) > 0:
		return errUsage(fs, "give a technician NAME or --none, not both")
	case *none:
	case len(rest) != 1:
		return errUsage(fs, "one technician NAME (or --none) is required")
	default:
		name = rest[0]
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.AssignTicketResponse, error) {
		return tc.AssignTicket(ctx, &desksidev1.AssignTicketRequest{Code: code, Technician: name})
	})
	if err != nil {
		return err
	}
	return e.printTicketChange("Assigned", resp.GetTicket())
}

func (e *runEnv) ticketStatus(args []string) error {
	fs := e.flags("ticket status", ticketStatusHelp)
	reason := fs.String("reason", "", "why (shown on the timeline)")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errUsage(fs, "one STATUS is required: open, pending, resolved or closed")
	}
	st, err := parseStatus(rest[0])
	if err != nil {
		return errUsage(fs, "%v", err)
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.SetTicketStatusResponse, error) {
		return tc.SetTicketStatus(ctx, &desksidev1.SetTicketStatusRequest{Code: code, Status: st, Reason: *reason})
	})
	if err != nil {
		return err
	}
	return e.printTicketChange("Updated", resp.GetTicket())
}

func (e *runEnv) ticketMerge(args []string) error {
	fs := e.flags("ticket merge", ticketMergeHelp)
	into := fs.String("into", "", "the `CODE` of the ticket it duplicates (required)")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, rest); err != nil {
		return err
	}
	if *into == "" {
		return errUsage(fs, "--into CODE is required")
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.MergeTicketResponse, error) {
		return tc.MergeTicket(ctx, &desksidev1.MergeTicketRequest{Code: code, Into: *into})
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "Merged %s into %s; %s is closed.\n", clean(resp.GetDuplicate().GetCode()),
		clean(resp.GetTicket().GetCode()), clean(resp.GetDuplicate().GetCode()))
	return err
}

func (e *runEnv) ticketLink(args []string) error {
	fs := e.flags("ticket link", ticketLinkHelp)
	seq := fs.Int64("audit", 0, "the audit record's number (`SEQ`)")
	kind := fs.String("kind", "", "diagnostics, command, action or session: your latest on --device")
	device := fs.String("device", "", "the device `ID` of --kind")
	since := fs.String("since", "24h", "with --kind, how far back to look (a duration or a time)")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, rest); err != nil {
		return err
	}
	req := &desksidev1.LinkTicketRequest{Code: code, AuditSeq: *seq, Kind: *kind, DeviceId: *device}
	switch {
	case *seq > 0 && *kind != "":
		return errUsage(fs, "give --audit or --kind, not both")
	case *seq == 0 && (*kind == "" || *device == ""):
		return errUsage(fs, "give --audit SEQ, or --kind and --device")
	case *kind != "":
		t, err := parseWhen(*since, e.now())
		if err != nil {
			return errUsage(fs, "--since: %v", err)
		}
		req.Since = timestamppb.New(t)
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.LinkTicketResponse, error) {
		return tc.LinkTicket(ctx, req)
	})
	if err != nil {
		return err
	}
	l := resp.GetLink()
	_, err = fmt.Fprintf(e.stdout, "Linked %s on %s (audit #%d) to %s.\n", clean(l.GetKind()), clean(l.GetTarget()), l.GetAuditSeq(), clean(resp.GetTicket().GetCode()))
	return err
}

// linkRun links the caller's latest record of kind on device since start
// to a ticket, after `deskside run --ticket`; a failure is a warning (the
// command ran).
func (e *runEnv) linkRun(c *conn, code, kind, device string, start time.Time) {
	ctx, cancel := e.rpcContext()
	defer cancel()
	_, err := desksidev1.NewTicketServiceClient(c.cc).LinkTicket(ctx, &desksidev1.LinkTicketRequest{
		Code: code, Kind: kind, DeviceId: device, Since: timestamppb.New(start)})
	if err != nil {
		fmt.Fprintf(e.stderr, "deskside: the %s ran but was not linked to %s: %v\n  link it with `deskside ticket link %s --kind %s --device %s`\n",
			kind, clean(code), c.explain(err), clean(code), kind, clean(device))
		return
	}
	fmt.Fprintf(e.stderr, "deskside: linked to %s\n", clean(code))
}

func (e *runEnv) ticketSLA(args []string) error {
	fs := e.flags("ticket sla", ticketSLAHelp)
	var sets stringList
	fs.Var(&sets, "set", "`PRIORITY=FIRST/RESOLUTION`, e.g. urgent=15m/4h (admin; repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMore(fs, pos); err != nil {
		return err
	}
	var settings *desksidev1.TicketSettings
	if len(sets) == 0 {
		resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.GetTicketSettingsResponse, error) {
			return tc.GetTicketSettings(ctx, &desksidev1.GetTicketSettingsRequest{})
		})
		if err != nil {
			return err
		}
		settings = resp.GetSettings()
	} else {
		req := &desksidev1.TicketSettings{}
		for _, s := range sets {
			p, durs, ok := strings.Cut(s, "=")
			fr, res, ok2 := strings.Cut(durs, "/")
			if !ok || !ok2 {
				return errUsage(fs, "--set %q: want PRIORITY=FIRST/RESOLUTION, e.g. urgent=15m/4h", clean(s))
			}
			prio, err := parsePriority(p)
			if err != nil {
				return errUsage(fs, "--set: %v", err)
			}
			d1, err1 := time.ParseDuration(fr)
			d2, err2 := time.ParseDuration(res)
			if err := errors.Join(err1, err2); err != nil {
				return errUsage(fs, "--set %q: %v", clean(s), err)
			}
			req.Sla = append(req.Sla, &desksidev1.TicketSlaTarget{Priority: prio, FirstResponse: durationpb.New(d1), Resolution: durationpb.New(d2)})
		}
		resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.SetTicketSettingsResponse, error) {
			return tc.SetTicketSettings(ctx, &desksidev1.SetTicketSettingsRequest{Settings: req})
		})
		if err != nil {
			return err
		}
		settings = resp.GetSettings()
	}
	var rows [][]string
	for _, t := range settings.GetSla() {
		rows = append(rows, []string{priorityWord(t.GetPriority()), t.GetFirstResponse().AsDuration().String(), t.GetResolution().AsDuration().String()})
	}
	return table(e.stdout, "", []string{"PRIORITY", "FIRST RESPONSE", "RESOLUTION"}, rows)
}
