package tickets_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
	"github.com/deskside/deskside/relay/store/sqlite"
	"github.com/deskside/deskside/relay/tickets"
)

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"DS-7K3Q": "DS-7K3Q", "ds-7k3q": "DS-7K3Q", "7k3q": "DS-7K3Q", " DS 7K3Q ": "DS-7K3Q", "ds7k3q": "DS-7K3Q",
		"DS-DS2K": "DS-DS2K", "DS2K": "DS-DS2K", "DS-7K3QA": "DS-7K3QA",
	} {
		if got, ok := tickets.NormalizeCode(in); !ok || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "DS-", "DS-7K3", "DS-0K3Q", "DS-OK3Q", "DS-1K3Q", "DS-IK3Q", "DS-7K3QAB7", "DS-7K3Ç", "printer"} {
		if got, ok := tickets.NormalizeCode(in); ok {
			t.Errorf("NormalizeCode(%q) = %q, accepted", in, got)
		}
	}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	tier1 = tickets.Actor{Name: "t1", Role: desksidev1.Role_ROLE_TIER1}
	tier2 = tickets.Actor{Name: "t2", Role: desksidev1.Role_ROLE_TIER2}
)

// TestCodes files many tickets: every code is unique, of the alphabet,
// and found again in any spelling.
func TestCodes(t *testing.T) {
	svc := tickets.New(openStore(t), nil)
	ctx := t.Context()
	seen := map[string]bool{}
	for range 300 {
		tk, err := svc.Create(ctx, tier1, tickets.NewTicket{Subject: "s"})
		if err != nil {
			t.Fatal(err)
		}
		c := strings.TrimPrefix(tk.Code, tickets.CodePrefix)
		if len(c) != 4 || strings.ContainsAny(c, "0O1I") || strings.Trim(c, tickets.Alphabet) != "" {
			t.Fatalf("bad code %q", tk.Code)
		}
		if seen[tk.Code] {
			t.Fatalf("code %s issued twice", tk.Code)
		}
		seen[tk.Code] = true
		got, err := svc.Lookup(ctx, strings.ToLower(c))
		if err != nil || got.ID != tk.ID {
			t.Fatalf("lookup %q: %v, %v", strings.ToLower(c), got.Code, err)
		}
	}
}

// TestCollision draws the same code twice: the second ticket gets another.
func TestCollision(t *testing.T) {
	svc := tickets.New(openStore(t), nil)
	svc.Rand = zeros{}
	a, err := svc.Create(t.Context(), tier1, tickets.NewTicket{Subject: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Create(t.Context(), tier1, tickets.NewTicket{Subject: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Code != "DS-2222" || b.Code != "DS-22222" {
		t.Errorf("codes %s, %s: want DS-2222, then a longer one after the collisions", a.Code, b.Code)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc := tickets.New(openStore(t), clock)
	ctx := t.Context()
	tk, err := svc.Create(ctx, tier1, tickets.NewTicket{Subject: "VPN\x1b[31m drops\n", Description: "a\x07b\r\nc\u202e", Priority: 4})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != "VPN drops" || tk.Description != "ab\nc" {
		t.Errorf("cleaned %q / %q", tk.Subject, tk.Description)
	}
	sla, err := svc.SLA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Minute)
	st := sla.State(tk, now)
	if !st.FirstResponseBreached || *st.FirstResponseLeft != -5*time.Minute || *st.ResolutionLeft != 220*time.Minute {
		t.Errorf("urgent after 20 min: %+v", st)
	}
	if _, err := svc.Escalate(ctx, tier1, tk.Code, 2, " "); !errors.Is(err, tickets.ErrInvalid) {
		t.Errorf("escalation without a reason: %v", err)
	}
	if tk, err = svc.Escalate(ctx, tier1, tk.Code, 2, "needs VPN admin"); err != nil || tk.Tier != 2 {
		t.Fatalf("escalate: %v, tier %d", err, tk.Tier)
	}
	if _, err := svc.Assign(ctx, tier1, tk.Code, "", true); !errors.Is(err, tickets.ErrForbidden) {
		t.Errorf("tier 1 claimed a tier 2 ticket: %v", err)
	}
	if _, err := svc.Reply(ctx, tier1, tk.Code, "note", true); err != nil {
		t.Errorf("tier 1 note on a tier 2 ticket: %v", err)
	}
	if tk, err = svc.Assign(ctx, tier2, tk.Code, "", true); err != nil || tk.Assignee != "t2" || tk.Status != 2 {
		t.Fatalf("claim: %v, %+v", err, tk)
	}
	if tk, err = svc.Reply(ctx, tier2, tk.Code, "Try now", false); err != nil || !tk.FirstResponseAt.Equal(now) {
		t.Fatalf("reply: %v, first response %v", err, tk.FirstResponseAt)
	}
	if _, err := svc.SetStatus(ctx, tier2, tk.Code, 1, ""); !errors.Is(err, tickets.ErrState) {
		t.Errorf("back to new: %v", err)
	}
	if tk, err = svc.SetStatus(ctx, tier2, tk.Code, 4, "fixed"); err != nil || tk.ResolvedAt.IsZero() {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := svc.Reply(ctx, tier2, tk.Code, "hi", false); !errors.Is(err, tickets.ErrState) {
		t.Errorf("public reply on a resolved ticket: %v", err)
	}
	if tk, err = svc.SetStatus(ctx, tier2, tk.Code, 2, "came back"); err != nil || !tk.ResolvedAt.IsZero() {
		t.Fatalf("reopen: %v, %+v", err, tk)
	}
	if _, err := svc.Reply(ctx, tier1, tk.Code, strings.Repeat("x", tickets.MaxTextBytes+1), true); !errors.Is(err, tickets.ErrInvalid) {
		t.Errorf("oversized note: %v", err)
	}
	_, es, err := svc.Get(ctx, tk.Code)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range es {
		kinds = append(kinds, strings.TrimPrefix(desksidev1.TicketEntryKind(e.Kind).String(), "TICKET_ENTRY_KIND_"))
	}
	if got := strings.Join(kinds, " "); got != "CREATED TIER NOTE ASSIGNEE STATUS REPLY STATUS STATUS" {
		t.Errorf("timeline %s", got)
	}
}

func TestSetSLA(t *testing.T) {
	svc := tickets.New(openStore(t), nil)
	ctx := t.Context()
	m := tickets.DefaultSLA().Proto()
	m.Sla = m.Sla[:1] // urgent
	m.Sla[0].Resolution.Seconds = 2 * 3600
	if _, err := svc.SetSLA(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := svc.SLA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[4].Resolution != 2*time.Hour || got[1].Resolution != 7*24*time.Hour {
		t.Errorf("SLA after change: %v", got)
	}
	m.Sla[0].Resolution.Seconds = 1
	if _, err := svc.SetSLA(ctx, m); !errors.Is(err, tickets.ErrInvalid) {
		t.Errorf("a 1 s target: %v", err)
	}
	_ = store.ErrNotFound
}
