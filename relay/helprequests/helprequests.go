// Package helprequests is Get help on the relay: what a device's local
// user asks through the agent (the tray calls the agent, the agent calls
// the relay over its stream). The agent is not trusted: every field is
// checked and capped, filing and searching are rate-limited per device,
// and a user only ever sees the tickets filed from the same device under
// the same login, without the technicians' internal notes.
//
// The relay's agent service (relay/server) authenticates the device,
// audits, announces the new ticket to the queues and turns the errors
// here into refusing Acks.
package helprequests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
	"github.com/deskside/deskside/relay/kb"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/tickets"
)

// Errors. Each is wrapped with what exactly was wrong and what to do.
var (
	// ErrInvalid is a request that cannot be right (a bad login, no
	// description, a screenshot that is not a PNG).
	ErrInvalid = errors.New("help request invalid")
	// ErrTooLarge is a field over its cap.
	ErrTooLarge = errors.New("help request too large")
	// ErrNotFound is a request or article the user cannot see.
	ErrNotFound = errors.New("not found")
	// ErrState is a change the ticket's state does not allow (closed).
	ErrState = errors.New("not possible in this state")
	// ErrPartial is a help request filed as a ticket whose details the
	// relay could not all keep; the message names the ticket's code.
	ErrPartial = errors.New("filed in part")
)

// PartialError is a help request filed as ticket Code whose details the
// relay could not keep (Cause, for the log): the message, for the user,
// names the code.
type PartialError struct {
	Code  string
	Cause error
}

func (e *PartialError) Error() string {
	return "the request was filed as " + e.Code + ", but the relay could not keep it with your requests: " +
		"give the technician this code rather than filing again"
}

// Unwrap makes a PartialError an ErrPartial.
func (e *PartialError) Unwrap() error { return ErrPartial }

// LimitError is a request over the device's rate limit.
type LimitError struct {
	What       string
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many %s from this device; try again in %s", e.What, e.RetryAfter.Round(time.Second))
}

// Limits on what a device sends.
const (
	// MaxScreenshotBytes bounds a screenshot.
	MaxScreenshotBytes = 2 << 20
	// MaxScreenshotSide bounds a screenshot's width and height, and
	// MaxScreenshotPixels their product (three 4K screens side by side
	// fit; a small file that decodes to gigabytes does not).
	MaxScreenshotSide   = 16384
	MaxScreenshotPixels = 40_000_000
	// MaxLoginBytes bounds a login.
	MaxLoginBytes = 128
	// MaxTriageBytes bounds the triage report, marshalled.
	MaxTriageBytes = 256 << 10
	// MaxQueryBytes bounds a search.
	MaxQueryBytes = 500
	// MaxListed is the most requests ListMyRequests returns.
	MaxListed = 50
	// MaxSearchResults bounds SearchHelpArticles.limit.
	MaxSearchResults = 10
)

// Rates are the per-device rate limits.
type Rates struct {
	// Filing: at most Files per FileWindow (default 5 per 10 minutes).
	Files      int
	FileWindow time.Duration
	// Searching: at most Searches per minute (default 30).
	Searches int
	// Everything else (lists, replies, "this solved it"): at most Calls
	// per minute (default 60).
	Calls int
}

func (r Rates) withDefaults() Rates {
	if r.Files <= 0 {
		r.Files = 5
	}
	if r.FileWindow <= 0 {
		r.FileWindow = 10 * time.Minute
	}
	if r.Searches <= 0 {
		r.Searches = 30
	}
	if r.Calls <= 0 {
		r.Calls = 60
	}
	return r
}

// Store is what Get help needs of the relay's store.
type Store interface {
	store.HelpStore
}

// Service answers a device's Get help requests.
type Service struct {
	tickets *tickets.Service
	kb      *kb.Base
	store   Store
	now     func() time.Time

	files, searches, calls *window
}

// New returns the Get help of a relay.
func New(t *tickets.Service, k *kb.Base, st Store, rates Rates, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	r := rates.withDefaults()
	return &Service{tickets: t, kb: k, store: st, now: now,
		files: newWindow(r.Files, r.FileWindow), searches: newWindow(r.Searches, time.Minute), calls: newWindow(r.Calls, time.Minute)}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Login checks a login: 1 to MaxLoginBytes bytes of letters, digits and
// . _ - @ \ $ and spaces (refused, not cut: the login decides what a user
// sees).
func Login(s string) (string, error) {
	if s == "" {
		return "", invalid("the user's login is required")
	}
	if len(s) > MaxLoginBytes {
		return "", fmt.Errorf("%w: the login is %d bytes; at most %d", ErrTooLarge, len(s), MaxLoginBytes)
	}
	if !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return "", invalid("the login is not valid UTF-8 without leading or trailing spaces")
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(`._-@\$ `, r) {
			return "", invalid("the login has a character (%q) outside letters, digits and . _ - @ \\ $", r)
		}
	}
	return s, nil
}

// limit charges one call of w for device.
func (s *Service) limit(w *window, what, device string) error {
	if wait, ok := w.take(device, s.now()); !ok {
		return &LimitError{What: what, RetryAfter: wait}
	}
	return nil
}

// Filed is a filed help request.
type Filed struct {
	Ticket store.Ticket
	// Screenshot and Triage say what was kept with it.
	Screenshot, Triage bool
	Request            *desksidev1.MyRequest
}

// File files req from device as a ticket with the device's snapshot, the
// triage report (kept as a file and summarised in an internal note) and
// the screenshot.
func (s *Service) File(ctx context.Context, device string, req *desksidev1.FileHelpRequest) (Filed, error) {
	var f Filed
	// Every attempt counts against the device's calls, so that a flood of
	// refused requests is cut short too; filings that pass the checks
	// count against the filing limit as well.
	if err := s.limit(s.calls, "requests", device); err != nil {
		return f, err
	}
	login, err := Login(req.GetUser().GetLogin())
	if err != nil {
		return f, err
	}
	shot := req.GetScreenshotPng()
	if len(shot) > MaxScreenshotBytes {
		return f, fmt.Errorf("%w: the screenshot is %d bytes; at most %d (2 MiB): send a smaller or cropped one, or none",
			ErrTooLarge, len(shot), MaxScreenshotBytes)
	}
	if len(shot) > 0 {
		cfg, err := png.DecodeConfig(bytes.NewReader(shot))
		if err != nil {
			return f, invalid("the screenshot is not a PNG image: %v", err)
		}
		if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxScreenshotSide || cfg.Height > MaxScreenshotSide ||
			cfg.Width*cfg.Height > MaxScreenshotPixels {
			return f, invalid("the screenshot is %dx%d; at most %d pixels a side and %d in all: send a smaller or cropped one",
				cfg.Width, cfg.Height, MaxScreenshotSide, MaxScreenshotPixels)
		}
	}
	var triage []byte
	if t := req.GetTriage(); t != nil {
		if n := proto.Size(t); n > MaxTriageBytes {
			return f, fmt.Errorf("%w: the triage report is %d bytes; at most %d", ErrTooLarge, n, MaxTriageBytes)
		}
		t = proto.Clone(t).(*desksidev1.CheckReport)
		if err := wire.DefaultCaps.Sanitize(t.ProtoReflect()); err != nil {
			if errors.Is(err, wire.ErrTooLarge) {
				return f, fmt.Errorf("%w: triage report: %v", ErrTooLarge, err)
			}
			return f, invalid("triage report: %v", err)
		}
		if triage, err = (proto.MarshalOptions{Deterministic: true}).Marshal(t); err != nil {
			return f, invalid("triage report: %v", err)
		}
	}
	if len(req.GetDescription()) > tickets.MaxTextBytes {
		return f, fmt.Errorf("%w: the description is %d bytes; at most %d (32 KiB)", ErrTooLarge, len(req.GetDescription()), tickets.MaxTextBytes)
	}
	desc := strings.TrimSpace(req.GetDescription())
	if desc == "" {
		return f, invalid("a description of the problem is required")
	}
	subject := req.GetSubject()
	if strings.TrimSpace(subject) == "" {
		subject, _, _ = strings.Cut(desc, "\n")
	}
	subject = cutRunes(strings.Join(strings.Fields(wire.CleanString(subject, 4*tickets.MaxSubjectRunes)), " "), tickets.MaxSubjectRunes)
	if err := s.limit(s.files, "help requests", device); err != nil {
		return f, err
	}
	t, err := s.tickets.Create(ctx, tickets.Actor{Name: tickets.RequesterAuthor(login)}, tickets.NewTicket{
		RequesterName: req.GetUser().GetName(), RequesterEmail: req.GetUser().GetEmail(), DeviceID: device,
		Subject: subject, Description: desc, Category: req.GetCategory(),
	})
	if err != nil {
		return f, ticketErr(err)
	}
	var files []store.TicketAttachment
	if len(shot) > 0 {
		files = append(files, store.TicketAttachment{Name: "screenshot.png", ContentType: "image/png", Data: shot})
		f.Screenshot = true
	}
	if triage != nil {
		files = append(files, store.TicketAttachment{Name: "triage.pb", ContentType: "application/x-protobuf; messageType=deskside.v1.CheckReport", Data: triage})
		f.Triage = true
	}
	// From here on the ticket exists: f.Ticket is set whatever happens,
	// so that the caller announces and audits it, and a failure names
	// its code (filing again would make a duplicate).
	f.Ticket = t
	hr := store.HelpRequest{Ticket: t.Code, DeviceID: device, Login: login, CreatedAt: t.CreatedAt}
	for try := 0; ; try++ {
		err := s.store.PutHelpRequest(ctx, hr, files)
		if err == nil || errors.Is(err, store.ErrExists) {
			break
		}
		if try == 2 {
			return f, &PartialError{Code: t.Code, Cause: err}
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
	if f.Triage {
		note := TriageNote(req.GetTriage())
		if nt, err := s.tickets.Reply(ctx, tickets.Actor{Name: "relay"}, t.Code, note, true); err == nil {
			t = nt
			f.Ticket = t
		}
		// Without the note the triage report is still an attachment.
	}
	_, es, err := s.tickets.Get(ctx, t.Code)
	if err != nil {
		es = nil // the code and the state are what matter to the user
	}
	f.Request = View(t, es)
	return f, nil
}

// TriageNote is the internal note summarising a triage report.
func TriageNote(r *desksidev1.CheckReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Triage by the agent before filing: %s\n", statusName(r.GetOverall()))
	for _, c := range r.GetResults() {
		fmt.Fprintf(&b, "- %s: %s", wire.CleanString(c.GetName(), 64), statusName(c.GetStatus()))
		if s := wire.CleanString(c.GetSummary(), 256); s != "" {
			fmt.Fprintf(&b, " (%s)", s)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func statusName(s desksidev1.CheckStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CHECK_STATUS_"))
}

func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ticketErr maps a tickets error to this package's.
func ticketErr(err error) error {
	msg := func() string { return strings.TrimPrefix(err.Error(), "tickets: ") }
	switch {
	case errors.Is(err, tickets.ErrInvalid):
		if strings.Contains(err.Error(), " bytes; at most ") || strings.Contains(err.Error(), " characters; at most ") {
			return fmt.Errorf("%w: %s", ErrTooLarge, msg())
		}
		return fmt.Errorf("%w: %s", ErrInvalid, msg())
	case errors.Is(err, tickets.ErrNotFound):
		return fmt.Errorf("%w: %s", ErrNotFound, msg())
	case errors.Is(err, tickets.ErrState), errors.Is(err, tickets.ErrForbidden):
		return fmt.Errorf("%w: %s", ErrState, msg())
	}
	return err
}

// Search returns up to limit published articles matching query.
func (s *Service) Search(ctx context.Context, device string, req *desksidev1.SearchHelpArticles) (*desksidev1.HelpArticles, error) {
	q := req.GetQuery()
	if len(q) > MaxQueryBytes {
		return nil, fmt.Errorf("%w: the search is %d bytes; at most %d", ErrTooLarge, len(q), MaxQueryBytes)
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 5
	}
	limit = min(limit, MaxSearchResults)
	if err := s.limit(s.searches, "searches", device); err != nil {
		return nil, err
	}
	hits, err := s.kb.Search(ctx, q, true, "", limit)
	if err != nil {
		return nil, err
	}
	out := &desksidev1.HelpArticles{}
	for _, h := range hits {
		a, err := s.kb.Get(ctx, h.Article.ID, "")
		if err != nil || !a.Published {
			continue // unpublished or deleted meanwhile
		}
		var snip strings.Builder
		for _, p := range h.Snippet {
			snip.WriteString(p.Text)
		}
		out.Articles = append(out.Articles, &desksidev1.HelpArticle{
			Id: a.ID, Title: a.Title, Snippet: snip.String(), Html: kb.Render(a.Body), Category: a.Category,
		})
	}
	return out, nil
}

// Helped records that a published article solved the problem and returns
// how many times it has.
func (s *Service) Helped(ctx context.Context, device string, req *desksidev1.ArticleHelped) (int64, error) {
	login, err := Login(req.GetUser().GetLogin())
	if err != nil {
		return 0, err
	}
	if err := s.limit(s.calls, "requests", device); err != nil {
		return 0, err
	}
	if req.GetArticleId() <= 0 {
		return 0, fmt.Errorf("%w: no published article %d", ErrNotFound, req.GetArticleId())
	}
	a, err := s.kb.Get(ctx, req.GetArticleId(), "")
	if errors.Is(err, kb.ErrNotFound) || (err == nil && !a.Published) {
		return 0, fmt.Errorf("%w: no published article %d", ErrNotFound, req.GetArticleId())
	} else if err != nil {
		return 0, err
	}
	return s.store.ArticleHelped(ctx, a.ID, device, login, s.now())
}

// List returns the requests filed from device by the login, newest first.
func (s *Service) List(ctx context.Context, device string, req *desksidev1.ListMyRequests) (*desksidev1.MyRequests, error) {
	login, err := Login(req.GetLogin())
	if err != nil {
		return nil, err
	}
	if err := s.limit(s.calls, "requests", device); err != nil {
		return nil, err
	}
	hs, err := s.store.HelpRequestsOf(ctx, device, login, MaxListed)
	if err != nil {
		return nil, err
	}
	out := &desksidev1.MyRequests{}
	for _, h := range hs {
		t, es, err := s.tickets.Get(ctx, h.Ticket)
		if errors.Is(err, tickets.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out.Requests = append(out.Requests, View(t, es))
	}
	return out, nil
}

// Mine returns the help request of code when it was filed from device by
// login; ErrNotFound otherwise (as if it did not exist).
func (s *Service) Mine(ctx context.Context, device, login, code string) (store.HelpRequest, error) {
	c, ok := tickets.NormalizeCode(code)
	if !ok {
		return store.HelpRequest{}, invalid("%q is not a request code: codes look like DS-7K3Q", wire.CleanString(code, 32))
	}
	h, err := s.store.HelpRequest(ctx, c)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (h.DeviceID != device || h.Login != login)) {
		return h, fmt.Errorf("%w: no request %s of yours on this device (see My requests)", ErrNotFound, c)
	}
	return h, err
}

// Reply adds the user's reply or chat line to one of their requests and
// returns the request after it.
func (s *Service) Reply(ctx context.Context, device string, req *desksidev1.ReplyToRequest) (store.Ticket, *desksidev1.MyRequest, error) {
	login, err := Login(req.GetLogin())
	if err != nil {
		return store.Ticket{}, nil, err
	}
	if err := s.limit(s.calls, "requests", device); err != nil {
		return store.Ticket{}, nil, err
	}
	h, err := s.Mine(ctx, device, login, req.GetCode())
	if err != nil {
		return store.Ticket{}, nil, err
	}
	t, err := s.tickets.UserMessage(ctx, h.Ticket, login, req.GetText(), req.GetChat())
	if err != nil {
		return t, nil, ticketErr(err)
	}
	_, es, err := s.tickets.Get(ctx, t.Code)
	if err != nil {
		return t, nil, err
	}
	return t, View(t, es), nil
}

// View is a ticket as its requester sees it: the public entries only
// (replies, chat lines, status changes), never an internal note.
func View(t store.Ticket, es []store.TicketEntry) *desksidev1.MyRequest {
	r := &desksidev1.MyRequest{
		Code: t.Code, Subject: t.Subject, Status: tickets.StatusName(t.Status),
		PickedUp: t.Assignee != "" || !t.FirstResponseAt.IsZero(), Technician: t.Assignee,
		CreatedAt: timestamppb.New(t.CreatedAt), UpdatedAt: timestamppb.New(t.UpdatedAt),
	}
	for _, e := range es {
		if v := EntryView(e); v != nil {
			r.Entries = append(r.Entries, v)
		}
	}
	return r
}

// EntryView is a timeline entry as the requester sees it; nil for one
// they do not see.
func EntryView(e store.TicketEntry) *desksidev1.MyRequestEntry {
	v := &desksidev1.MyRequestEntry{Id: e.ID, Time: timestamppb.New(e.Time)}
	if strings.HasPrefix(e.Author, "requester <") {
		v.FromUser = true
	} else {
		v.Technician = e.Author
	}
	switch desksidev1.TicketEntryKind(e.Kind) {
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CREATED:
		v.Kind = "created"
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY:
		v.Kind, v.Text = "reply", e.Body
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT:
		v.Kind, v.Text = "chat", e.Body
	case desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_STATUS:
		v.Kind, v.Text = "status", e.To
	default:
		return nil
	}
	return v
}
