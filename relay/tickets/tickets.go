// Package tickets is the relay's help-desk tickets: the rules of what may
// happen to a ticket and who may do it. The RPC adapter (relay/server)
// authenticates, audits and announces; the store (store.TicketStore)
// keeps tickets, timelines and the search index. This package decides.
//
// # Codes
//
// A ticket is followed by a code read over the phone: "DS-" and four
// characters of Alphabet (no 0/O, no 1/I), drawn from crypto/rand, unique
// per relay (a collision draws again; after many, codes get a fifth
// character). Lookups accept any case, with or without "DS" and the dash
// (NormalizeCode).
//
// # Life
//
//	new → open → pending user → resolved → closed
//	            ↖______________↙      ↘ reopen (open) ↙
//
// Any active status (new, open, pending user) may move to any other
// active one, to resolved or to closed; resolved moves to closed; a
// resolved or closed ticket reopens to open. Claiming or assigning a new
// ticket opens it, and so does the first public reply, which also meets
// the first-response target. A merged duplicate is closed for good: it
// only takes internal notes, and its timeline stays readable.
//
// # Tiers and who may do what
//
// Every ticket is in the queue of one tier (1–3). A technician's tier is
// their role's (an admin counts as tier 3 and may do everything).
// Anyone may read any ticket, file one and add internal notes. Working a
// ticket (public replies, status, priority, links, merging, escalating
// and assigning) needs a tier at least the ticket's, or being its
// assignee. Claiming needs the ticket's tier; an assignee must have it too.
// Escalation (to a higher tier) and de-escalation (lower) need a reason
// and leave the ticket unassigned in the new tier's queue.
//
// # SLA
//
// Each priority has a first-response and a resolution target (DefaultSLA,
// changed by admins, kept as a relay setting); State computes the time
// left and breaches.
package tickets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
)

// Errors. Each is wrapped with what exactly was wrong.
var (
	// ErrInvalid is a request that cannot be right (bad code, oversized
	// text, missing reason).
	ErrInvalid = errors.New("tickets: invalid request")
	// ErrNotFound is a ticket (or device, technician, audit record) that
	// does not exist.
	ErrNotFound = errors.New("tickets: not found")
	// ErrForbidden is an action the caller's tier does not allow.
	ErrForbidden = errors.New("tickets: not allowed")
	// ErrState is an action the ticket's state does not allow (a
	// transition that does not exist, a merged ticket).
	ErrState = errors.New("tickets: not possible in this state")
)

// Store is what the tickets need of the relay's store.
type Store interface {
	store.TicketStore
	GetRelaySetting(ctx context.Context, name string) ([]byte, error)
	PutRelaySetting(ctx context.Context, name string, data []byte) error
	GetDevice(ctx context.Context, id string) (store.Device, error)
	GetInventory(ctx context.Context, deviceID string) (store.Inventory, error)
	LatestHealth(ctx context.Context, deviceID string) (store.HealthSample, error)
	GetTechnician(ctx context.Context, name string) (store.Technician, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
}

// Service applies the ticket rules over a Store.
type Service struct {
	store Store
	now   func() time.Time
	// Rand is where codes come from; crypto/rand when nil.
	Rand io.Reader
}

// New returns the tickets of st, with now as the clock.
func New(st Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, now: now}
}

// Actor is the technician acting.
type Actor struct {
	Name string
	Role desksidev1.Role
}

// Tier is the actor's tier: their role's, 3 for an admin.
func (a Actor) Tier() int {
	if a.Role >= desksidev1.Role_ROLE_TIER3 {
		return 3
	}
	return int(a.Role)
}

func (a Actor) admin() bool { return a.Role >= desksidev1.Role_ROLE_ADMIN }

// canWork reports whether a may work on t.
func (a Actor) canWork(t store.Ticket) bool {
	return a.admin() || a.Tier() >= t.Tier || (t.Assignee != "" && t.Assignee == a.Name)
}

func (a Actor) mustWork(t store.Ticket, what string) error {
	if !a.canWork(t) {
		return fmt.Errorf("%w: %s is in the tier %d queue and you are tier %d: only tier %d and up or its assignee may %s it (an internal note is open to all)",
			ErrForbidden, t.Code, t.Tier, a.Tier(), t.Tier, what)
	}
	return nil
}

// Status, priority and entry kind values as stored.
const (
	statusNew      = int(desksidev1.TicketStatus_TICKET_STATUS_NEW)
	statusOpen     = int(desksidev1.TicketStatus_TICKET_STATUS_OPEN)
	statusPending  = int(desksidev1.TicketStatus_TICKET_STATUS_PENDING_USER)
	statusResolved = int(desksidev1.TicketStatus_TICKET_STATUS_RESOLVED)
	statusClosed   = int(desksidev1.TicketStatus_TICKET_STATUS_CLOSED)

	priorityNormal = int(desksidev1.TicketPriority_TICKET_PRIORITY_NORMAL)
)

func kind(k desksidev1.TicketEntryKind) int { return int(k) }

// StatusName is a status as people write it: "new", "open", "pending
// user", "resolved", "closed".
func StatusName(s int) string {
	n := desksidev1.TicketStatus(s).String()
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "TICKET_STATUS_")), "_", " ")
}

func priorityName(p int) string {
	return strings.ToLower(strings.TrimPrefix(desksidev1.TicketPriority(p).String(), "TICKET_PRIORITY_"))
}

// Active are the statuses of work not done: a queue's default.
var Active = []int{statusNew, statusOpen, statusPending}

func active(s int) bool { return s == statusNew || s == statusOpen || s == statusPending }

// allowed reports whether a ticket may move from one status to another.
func allowed(from, to int) bool {
	switch {
	case from == to:
		return false
	case active(from):
		return to >= statusNew && to <= statusClosed && to != statusNew
	case from == statusResolved:
		return to == statusClosed || to == statusOpen
	case from == statusClosed:
		return to == statusOpen
	}
	return false
}

// NewTicket is what a ticket is filed with.
type NewTicket struct {
	RequesterName, RequesterEmail, DeviceID string
	Subject, Description, Category          string
	Priority                                int // 0: normal
	Tier                                    int // 0: 1
}

// maxCodeDraws is how many codes Create draws before giving up; the last
// draws are one character longer.
const maxCodeDraws = 12

// Create files a ticket as a. With a device, the device's inventory and
// latest health are kept with it (the snapshot).
func (s *Service) Create(ctx context.Context, a Actor, n NewTicket) (store.Ticket, error) {
	var err error
	t := store.Ticket{Status: statusNew, Priority: cmpOr(n.Priority, priorityNormal), Tier: cmpOr(n.Tier, 1), CreatedBy: a.Name}
	if t.Subject, err = line("subject", n.Subject, MaxSubjectRunes); err != nil {
		return t, err
	}
	if t.Subject == "" {
		return t, invalid("a subject is required: one line saying what is wrong")
	}
	if t.Description, err = text("description", n.Description); err != nil {
		return t, err
	}
	if t.Category, err = line("category", n.Category, MaxCategoryRunes); err != nil {
		return t, err
	}
	if t.RequesterName, err = line("requester name", n.RequesterName, MaxNameRunes); err != nil {
		return t, err
	}
	if t.RequesterEmail, err = email(n.RequesterEmail); err != nil {
		return t, err
	}
	if t.Priority < 1 || t.Priority > 4 {
		return t, invalid("unknown priority %d: low, normal, high or urgent", t.Priority)
	}
	if t.Tier < 1 || t.Tier > 3 {
		return t, invalid("tier %d: tickets are in tier 1, 2 or 3", t.Tier)
	}
	if n.DeviceID != "" {
		if _, err := s.store.GetDevice(ctx, n.DeviceID); errors.Is(err, store.ErrNotFound) {
			return t, fmt.Errorf("%w: no device %q (see `deskside devices list`)", ErrNotFound, n.DeviceID)
		} else if err != nil {
			return t, err
		}
		t.DeviceID = n.DeviceID
		if t.Snapshot, err = s.takeSnapshot(ctx, n.DeviceID); err != nil {
			return t, err
		}
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	first := []store.TicketEntry{{Time: now, Author: a.Name, Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CREATED)}}
	for i := range maxCodeDraws {
		length := codeLen
		if i >= maxCodeDraws-4 {
			length++
		}
		if t.Code, err = newCode(s.Rand, length); err != nil {
			return t, err
		}
		created, err := s.store.CreateTicket(ctx, t, first)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		return created, err
	}
	return t, fmt.Errorf("tickets: no free code after %d draws", maxCodeDraws)
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// takeSnapshot is the device's current inventory and latest health,
// marshalled (nil when it has reported neither).
func (s *Service) takeSnapshot(ctx context.Context, deviceID string) ([]byte, error) {
	snap := &desksidev1.TicketSnapshot{TakenAt: timestamppb.New(s.now())}
	inv, err := s.store.GetInventory(ctx, deviceID)
	switch {
	case err == nil:
		snap.Inventory = new(desksidev1.Inventory)
		if err := proto.Unmarshal(inv.Data, snap.Inventory); err != nil {
			return nil, fmt.Errorf("tickets: stored inventory of %s is unreadable: %w", deviceID, err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	hs, err := s.store.LatestHealth(ctx, deviceID)
	switch {
	case err == nil && len(hs.Detail) > 0:
		snap.Health = new(desksidev1.HealthSample)
		if err := proto.Unmarshal(hs.Detail, snap.Health); err != nil {
			return nil, fmt.Errorf("tickets: stored health of %s is unreadable: %w", deviceID, err)
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if snap.Inventory == nil && snap.Health == nil {
		return nil, nil
	}
	return proto.Marshal(snap)
}

// Lookup returns a ticket by code, typed any way NormalizeCode accepts.
func (s *Service) Lookup(ctx context.Context, code string) (store.Ticket, error) {
	c, ok := NormalizeCode(code)
	if !ok {
		return store.Ticket{}, invalid("%q is not a ticket code: codes look like DS-7K3Q (no 0, O, 1 or I)", cleanShort(code))
	}
	t, err := s.store.GetTicket(ctx, c)
	if errors.Is(err, store.ErrNotFound) {
		return t, NoTicket(c)
	}
	return t, err
}

// NoTicket is the ErrNotFound of ticket code: also the answer for a
// ticket the caller may not see.
func NoTicket(code string) error {
	return fmt.Errorf("%w: no ticket %s (see `deskside ticket list --search WORDS`)", ErrNotFound, code)
}

func cleanShort(s string) string {
	c, _ := line("code", s, 1<<10)
	if len(c) > 40 {
		c = c[:40] + "…"
	}
	return c
}

// Get returns a ticket and its timeline.
func (s *Service) Get(ctx context.Context, code string) (store.Ticket, []store.TicketEntry, error) {
	t, err := s.Lookup(ctx, code)
	if err != nil {
		return t, nil, err
	}
	es, err := s.store.TicketEntries(ctx, t.ID)
	return t, es, err
}

// Snapshot returns the device snapshot kept with a ticket, nil if none.
func (s *Service) Snapshot(ctx context.Context, code string) (store.Ticket, *desksidev1.TicketSnapshot, error) {
	t, err := s.Lookup(ctx, code)
	if err != nil || len(t.Snapshot) == 0 {
		return t, nil, err
	}
	snap := new(desksidev1.TicketSnapshot)
	if err := proto.Unmarshal(t.Snapshot, snap); err != nil {
		return t, nil, fmt.Errorf("tickets: snapshot of %s is unreadable: %w", t.Code, err)
	}
	return t, snap, nil
}

// Query selects tickets for List.
type Query struct {
	Queue      desksidev1.TicketQueue
	Statuses   []int // empty: Active
	Priorities []int
	Category   string
	DeviceID   string
	Assignee   string
	Tier       int
	// Groups is the caller's device scope (store.TicketFilter.Groups); a
	// ticket found by its code is returned whatever it says, and the
	// caller checks that one.
	Groups []string
	// Search is words, or a ticket code (which finds that ticket whatever
	// the other fields say).
	Search        string
	Limit, Offset int
}

// MaxCount is how far List counts the matching tickets: a total of
// MaxCount+1 means more than MaxCount (a queue says "10,000+"). Counting
// every match of a large queue on every call was most of a list's time.
const MaxCount = 10_000

// List returns a queue's tickets and how many match, counted up to
// MaxCount+1.
func (s *Service) List(ctx context.Context, a Actor, q Query) ([]store.Ticket, int64, error) {
	if c, ok := NormalizeCode(q.Search); ok {
		if t, err := s.store.GetTicket(ctx, c); err == nil {
			t.Snapshot = nil
			return []store.Ticket{t}, 1, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, 0, err
		}
	}
	if q.Tier < 0 || q.Tier > 3 {
		return nil, 0, invalid("tier %d: tickets are in tier 1, 2 or 3", q.Tier)
	}
	if q.Offset < 0 {
		return nil, 0, invalid("negative offset %d", q.Offset)
	}
	f := store.TicketFilter{Statuses: q.Statuses, Priorities: q.Priorities, Category: q.Category, DeviceID: q.DeviceID,
		Assignee: q.Assignee, Tier: q.Tier, Groups: q.Groups, Search: q.Search, Limit: q.Limit, Offset: q.Offset, CountLimit: MaxCount + 1}
	if len(f.Statuses) == 0 {
		f.Statuses = Active
	}
	switch q.Queue {
	case desksidev1.TicketQueue_TICKET_QUEUE_MINE:
		f.Assignee = a.Name
	case desksidev1.TicketQueue_TICKET_QUEUE_TIER:
		f.Tier = a.Tier()
	case desksidev1.TicketQueue_TICKET_QUEUE_UNASSIGNED:
		f.Unassigned = true
	}
	return s.store.ListTickets(ctx, f)
}

// maxConflicts is how often a change is tried again when the ticket
// changed between reading and writing it.
const maxConflicts = 8

// change applies fn to the current ticket and stores the result with the
// entries fn returns (stamped with a and now); fn returning no entries
// means nothing changed. Concurrent changes are retried.
func (s *Service) change(ctx context.Context, a Actor, code string, fn func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error)) (store.Ticket, error) {
	for range maxConflicts {
		t, err := s.Lookup(ctx, code)
		if err != nil {
			return t, err
		}
		now := s.now()
		next := t
		entries, err := fn(&next, now)
		if err != nil || len(entries) == 0 {
			return t, err
		}
		next.UpdatedAt = now
		for i := range entries {
			entries[i].Time, entries[i].Author = now, a.Name
		}
		got, err := s.store.UpdateTicket(ctx, next, entries)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return got, err
	}
	return store.Ticket{}, fmt.Errorf("tickets: %s keeps changing; try again", code)
}

func notMerged(t store.Ticket) error {
	if t.MergedInto != "" {
		return fmt.Errorf("%w: %s was merged into %s; work on that one (`deskside ticket show %s`)", ErrState, t.Code, t.MergedInto, t.MergedInto)
	}
	return nil
}

// setStatus moves t to status, recording it; reason goes with it.
func setStatus(t *store.Ticket, to int, now time.Time, reason string) store.TicketEntry {
	e := store.TicketEntry{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_STATUS),
		From: StatusName(t.Status), To: StatusName(to), Body: reason}
	switch to {
	case statusOpen:
		if !active(t.Status) { // reopened
			t.ResolvedAt, t.ClosedAt = time.Time{}, time.Time{}
		}
	case statusResolved:
		t.ResolvedAt = now
	case statusClosed:
		t.ClosedAt = now
	}
	t.Status = to
	return e
}

// Reply adds a public reply or, internal, a note.
func (s *Service) Reply(ctx context.Context, a Actor, code, body string, internal bool) (store.Ticket, error) {
	b, err := text("reply", body)
	if err != nil {
		return store.Ticket{}, err
	}
	if b == "" {
		return store.Ticket{}, invalid("the reply is empty")
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if internal {
			return []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_NOTE), Body: b}}, nil
		}
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "reply to"); err != nil {
			return nil, err
		}
		if !active(t.Status) {
			return nil, fmt.Errorf("%w: %s is %s; reopen it first (`deskside ticket status %s open`) or add an internal note (--internal)",
				ErrState, t.Code, StatusName(t.Status), t.Code)
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY), Body: b}}
		if t.FirstResponseAt.IsZero() {
			t.FirstResponseAt = now
		}
		if t.Status == statusNew {
			out = append(out, setStatus(t, statusOpen, now, ""))
		}
		return out, nil
	})
}

// SetStatus moves a ticket to status, with an optional reason.
func (s *Service) SetStatus(ctx context.Context, a Actor, code string, status int, reason string) (store.Ticket, error) {
	r, err := line("reason", reason, MaxReasonRunes)
	if err != nil {
		return store.Ticket{}, err
	}
	if status < statusNew || status > statusClosed {
		return store.Ticket{}, invalid("unknown status %d: open, pending, resolved or closed", status)
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "change the status of"); err != nil {
			return nil, err
		}
		if t.Status == status {
			return nil, nil
		}
		if !allowed(t.Status, status) {
			return nil, fmt.Errorf("%w: %s is %s and cannot become %s (new → open → pending user → resolved → closed; resolved or closed reopen to open)",
				ErrState, t.Code, StatusName(t.Status), StatusName(status))
		}
		return []store.TicketEntry{setStatus(t, status, now, r)}, nil
	})
}

// Update changes a ticket's priority (0: unchanged) and category (nil:
// unchanged).
func (s *Service) Update(ctx context.Context, a Actor, code string, priority int, category *string) (store.Ticket, error) {
	if priority < 0 || priority > 4 {
		return store.Ticket{}, invalid("unknown priority %d: low, normal, high or urgent", priority)
	}
	var cat string
	if category != nil {
		var err error
		if cat, err = line("category", *category, MaxCategoryRunes); err != nil {
			return store.Ticket{}, err
		}
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "change"); err != nil {
			return nil, err
		}
		var out []store.TicketEntry
		if priority != 0 && priority != t.Priority {
			out = append(out, store.TicketEntry{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_PRIORITY),
				From: priorityName(t.Priority), To: priorityName(priority)})
			t.Priority = priority
		}
		if category != nil && cat != t.Category {
			out = append(out, store.TicketEntry{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CATEGORY), From: t.Category, To: cat})
			t.Category = cat
		}
		return out, nil
	})
}

// Escalate moves a ticket to tier's queue, unassigned, for reason: up or
// down.
func (s *Service) Escalate(ctx context.Context, a Actor, code string, tier int, reason string) (store.Ticket, error) {
	r, err := line("reason", reason, MaxReasonRunes)
	if err != nil {
		return store.Ticket{}, err
	}
	if r == "" {
		return store.Ticket{}, invalid("a reason is required: say what was tried and why the ticket moves (--reason TEXT)")
	}
	if tier < 1 || tier > 3 {
		return store.Ticket{}, invalid("tier %d: tickets are in tier 1, 2 or 3", tier)
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "escalate"); err != nil {
			return nil, err
		}
		if !active(t.Status) {
			return nil, fmt.Errorf("%w: %s is %s; reopen it first (`deskside ticket status %s open`)", ErrState, t.Code, StatusName(t.Status), t.Code)
		}
		if tier == t.Tier {
			return nil, fmt.Errorf("%w: %s is already in tier %d", ErrInvalid, t.Code, tier)
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_TIER),
			From: strconv.Itoa(t.Tier), To: strconv.Itoa(tier), Body: r}}
		if t.Assignee != "" {
			out = append(out, store.TicketEntry{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_ASSIGNEE), From: t.Assignee})
		}
		t.Tier, t.Assignee = tier, ""
		return out, nil
	})
}

// Assign gives a ticket to technician ("" for no one); claim gives it to
// a.
func (s *Service) Assign(ctx context.Context, a Actor, code, technician string, claim bool) (store.Ticket, error) {
	if claim {
		technician = a.Name
	}
	var role desksidev1.Role
	if technician != "" && !claim {
		tech, err := s.store.GetTechnician(ctx, technician)
		if errors.Is(err, store.ErrNotFound) {
			return store.Ticket{}, fmt.Errorf("%w: no technician %q", ErrNotFound, cleanShort(technician))
		} else if err != nil {
			return store.Ticket{}, err
		}
		role = desksidev1.Role(tech.Role)
	}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		switch {
		case claim && a.Tier() < t.Tier:
			return nil, fmt.Errorf("%w: %s is in the tier %d queue and you are tier %d; a tier %d technician claims it",
				ErrForbidden, t.Code, t.Tier, a.Tier(), t.Tier)
		case !claim:
			if err := a.mustWork(*t, "assign"); err != nil {
				return nil, err
			}
			if technician != "" && (Actor{Name: technician, Role: role}).Tier() < t.Tier {
				return nil, fmt.Errorf("%w: %s is tier %d and %s is in the tier %d queue; escalate or de-escalate it first (`deskside ticket escalate %s --tier N --reason TEXT`)",
					ErrForbidden, technician, (Actor{Role: role}).Tier(), t.Code, t.Tier, t.Code)
			}
		}
		if !active(t.Status) {
			return nil, fmt.Errorf("%w: %s is %s; reopen it first (`deskside ticket status %s open`)", ErrState, t.Code, StatusName(t.Status), t.Code)
		}
		if technician == t.Assignee {
			return nil, nil
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_ASSIGNEE), From: t.Assignee, To: technician}}
		t.Assignee = technician
		if technician != "" && t.Status == statusNew {
			out = append(out, setStatus(t, statusOpen, now, ""))
		}
		return out, nil
	})
}

// Merge closes the duplicate code with a link to into and records the
// merge on both. It returns both as they are after it.
func (s *Service) Merge(ctx context.Context, a Actor, code, into string) (dup, target store.Ticket, err error) {
	target, err = s.Lookup(ctx, into)
	if err != nil {
		return dup, target, err
	}
	if err := notMerged(target); err != nil {
		return dup, target, err
	}
	if err := a.mustWork(target, "merge into"); err != nil {
		return dup, target, err
	}
	dup, err = s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if t.ID == target.ID {
			return nil, invalid("a ticket cannot be merged into itself")
		}
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "merge"); err != nil {
			return nil, err
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_MERGE), To: target.Code}}
		if t.Status != statusClosed {
			out = append(out, setStatus(t, statusClosed, now, "duplicate of "+target.Code))
		}
		t.MergedInto = target.Code
		return out, nil
	})
	if err != nil {
		return dup, target, err
	}
	target, err = s.change(ctx, a, target.Code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		return []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_MERGE), From: dup.Code}}, nil
	})
	return dup, target, err
}

// Link kinds and the audit actions each links.
var linkActions = map[string][]string{
	"diagnostics": {"checks.run"},
	"command":     {"command.run", "command.run.queued", "command.queue"},
	"action":      {"action.run"},
	"session":     {"desktop.start"},
}

// LinkKinds are the kinds of record a ticket links, for messages.
const LinkKinds = "diagnostics, command, action or session"

func linkKind(action string) string {
	for k, as := range linkActions {
		for _, a := range as {
			if a == action {
				return k
			}
		}
	}
	return ""
}

// LinkRequest names the audit record to link: Seq, or a's latest record
// of Kind on DeviceID since Since.
type LinkRequest struct {
	Seq      int64
	Kind     string
	DeviceID string
	Since    time.Time
}

// Link adds an audit record to a ticket's timeline (once: linking it again
// changes nothing). Only a's own records, unless a is an admin.
func (s *Service) Link(ctx context.Context, a Actor, code string, l LinkRequest) (store.Ticket, store.TicketEntry, error) {
	ev, err := s.findRecord(ctx, a, l)
	if err != nil {
		return store.Ticket{}, store.TicketEntry{}, err
	}
	e := store.TicketEntry{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_LINK), LinkKind: linkKind(ev.Action),
		LinkSeq: ev.Seq, LinkAction: ev.Action, LinkTarget: ev.Target}
	t, err := s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if err := a.mustWork(*t, "link records to"); err != nil {
			return nil, err
		}
		es, err := s.store.TicketEntries(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		for _, x := range es {
			if x.LinkSeq == ev.Seq {
				return nil, nil
			}
		}
		return []store.TicketEntry{e}, nil
	})
	return t, e, err
}

func (s *Service) findRecord(ctx context.Context, a Actor, l LinkRequest) (store.AuditEvent, error) {
	if l.Seq > 0 {
		evs, err := s.store.ListAudit(ctx, store.AuditFilter{Before: l.Seq + 1, Limit: 1})
		if err != nil {
			return store.AuditEvent{}, err
		}
		if len(evs) == 0 || evs[0].Seq != l.Seq {
			return store.AuditEvent{}, fmt.Errorf("%w: no audit record %d", ErrNotFound, l.Seq)
		}
		ev := evs[0]
		if ev.Actor != a.Name && !a.admin() {
			return ev, fmt.Errorf("%w: audit record %d is %s's; link your own records (an admin may link anyone's)", ErrForbidden, l.Seq, ev.Actor)
		}
		if linkKind(ev.Action) == "" {
			return ev, invalid("audit record %d is %s; tickets link a %s", l.Seq, ev.Action, LinkKinds)
		}
		return ev, nil
	}
	actions, ok := linkActions[l.Kind]
	if !ok {
		return store.AuditEvent{}, invalid("link kind %q: %s, or an audit record's number", cleanShort(l.Kind), LinkKinds)
	}
	if l.DeviceID == "" {
		return store.AuditEvent{}, invalid("a device id is required to find the latest %s", l.Kind)
	}
	evs, err := s.store.ListAudit(ctx, store.AuditFilter{Actor: a.Name, Target: l.DeviceID,
		Action: strings.SplitN(actions[0], ".", 2)[0] + ".*", Since: l.Since, Limit: 50})
	if err != nil {
		return store.AuditEvent{}, err
	}
	for _, ev := range evs {
		if linkKind(ev.Action) == l.Kind {
			return ev, nil
		}
	}
	return store.AuditEvent{}, fmt.Errorf("%w: you have no %s on device %s since %s to link", ErrNotFound, l.Kind, l.DeviceID, l.Since.UTC().Format(time.RFC3339))
}

// RequesterReply adds a public reply from the ticket's requester (an
// email answer, relay/notify), authored "requester <email>". from must be
// the requester's email (case-insensitive). A reply to a ticket pending
// the user or resolved opens it again; a closed or merged ticket refuses.
func (s *Service) RequesterReply(ctx context.Context, code, from, body string) (store.Ticket, error) {
	b, err := text("reply", body)
	if err != nil {
		return store.Ticket{}, err
	}
	if b == "" {
		return store.Ticket{}, invalid("the reply is empty")
	}
	from = strings.TrimSpace(from)
	a := Actor{Name: "requester <" + from + ">"}
	return s.change(ctx, a, code, func(t *store.Ticket, now time.Time) ([]store.TicketEntry, error) {
		if t.RequesterEmail == "" || !strings.EqualFold(t.RequesterEmail, from) {
			return nil, fmt.Errorf("%w: %s is not the requester of %s", ErrForbidden, from, t.Code)
		}
		if err := notMerged(*t); err != nil {
			return nil, err
		}
		if t.Status == statusClosed {
			return nil, fmt.Errorf("%w: %s is closed; a technician may reopen it (`deskside ticket status %s open`)", ErrState, t.Code, t.Code)
		}
		out := []store.TicketEntry{{Kind: kind(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY), Body: b}}
		if t.Status == statusPending || t.Status == statusResolved {
			out = append(out, setStatus(t, statusOpen, now, "the requester answered by email"))
		}
		return out, nil
	})
}
