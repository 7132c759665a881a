package helprequests

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/store"
)

func TestLogin(t *testing.T) {
	for _, ok := range []string{"alice", `CORP\alice`, "alice.smith@corp.example", "jean-luc", "svc$", "José", "Ann Lee"} {
		if got, err := Login(ok); err != nil || got != ok {
			t.Errorf("Login(%q) = %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"", " alice", "alice\n", "../x", "a/b", "a\x00b", "a\u202eb", "a;b", strings.Repeat("a", MaxLoginBytes+1)} {
		if _, err := Login(bad); err == nil {
			t.Errorf("Login(%q) accepted", bad)
		} else if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("Login(%q): %v", bad, err)
		}
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if _, ok := w.take("d1", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("call %d refused", i)
		}
	}
	wait, ok := w.take("d1", t0.Add(10*time.Second))
	if ok || wait != 50*time.Second {
		t.Fatalf("4th call: %v %v", wait, ok)
	}
	if _, ok := w.take("d2", t0.Add(10*time.Second)); !ok {
		t.Fatal("another device is limited by d1")
	}
	if _, ok := w.take("d1", t0.Add(60*time.Second)); !ok {
		t.Fatal("the oldest call did not leave the window")
	}
	if _, ok := w.take("d1", t0.Add(60*time.Second)); ok {
		t.Fatal("a 4th call within the minute")
	}
	// Idle keys are forgotten.
	w.take("d3", t0.Add(10*time.Minute))
	if len(w.calls) != 1 {
		t.Fatalf("keys kept: %v", w.calls)
	}
}

func TestViewHidesNotes(t *testing.T) {
	now := time.Unix(2000, 0)
	k := func(x desksidev1.TicketEntryKind) int { return int(x) }
	v := View(store.Ticket{Code: "DS-AAAA", Subject: "s", Status: 2, Assignee: "tom", CreatedAt: now, UpdatedAt: now}, []store.TicketEntry{
		{ID: 1, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CREATED), Author: "requester <alice>", Time: now},
		{ID: 2, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_NOTE), Author: "tom", Body: "secret", Time: now},
		{ID: 3, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_REPLY), Author: "tom", Body: "hi", Time: now},
		{ID: 4, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_TIER), Author: "tom", Body: "needs tier 2, user is rude", Time: now},
		{ID: 5, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT), Author: "requester <alice>", Body: "ok", Time: now},
		{ID: 6, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_LINK), Author: "tom", LinkAction: "command.run", Time: now},
		{ID: 7, Kind: k(desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_STATUS), Author: "tom", From: "open", To: "resolved", Body: "internal reason", Time: now},
	})
	var got []string
	for _, e := range v.GetEntries() {
		got = append(got, e.GetKind()+":"+e.GetText())
	}
	if strings.Join(got, ",") != "created:,reply:hi,chat:ok,status:resolved" || v.GetStatus() != "open" || !v.GetPickedUp() || v.GetTechnician() != "tom" {
		t.Fatalf("view: %v / %v", got, v)
	}
	if !v.GetEntries()[2].GetFromUser() || v.GetEntries()[1].GetFromUser() || v.GetEntries()[1].GetTechnician() != "tom" {
		t.Fatalf("authors: %v", v.GetEntries())
	}
}

// pngHeader is the start of a PNG that claims w×h pixels: enough for
// png.DecodeConfig, which is all the relay reads.
func pngHeader(w, h uint32) []byte {
	ihdr := []byte{'I', 'H', 'D', 'R', byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w), byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h), 8, 6, 0, 0, 0}
	crc := crc32.ChecksumIEEE(ihdr)
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return append(out, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

// TestFileRefusesBeforeStoring: what is refused never reaches the
// tickets or the store (the service has neither here).
func TestFileRefusesBeforeStoring(t *testing.T) {
	s := New(nil, nil, nil, Rates{}, nil)
	for name, c := range map[string]struct {
		req  *desksidev1.FileHelpRequest
		want error
	}{
		"bomb":      {&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: "x", ScreenshotPng: pngHeader(16000, 16000)}, ErrInvalid},
		"too wide":  {&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: "x", ScreenshotPng: pngHeader(20000, 10)}, ErrInvalid},
		"truncated": {&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: "x", ScreenshotPng: []byte("\x89PNG\r\n\x1a\n")}, ErrInvalid},
		"no user":   {&desksidev1.FileHelpRequest{Description: "x"}, ErrInvalid},
		"blank":     {&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: " \n "}, ErrInvalid},
		"big triage": {&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: "x",
			Triage: &desksidev1.CheckReport{Results: []*desksidev1.CheckResult{{Summary: strings.Repeat("s", MaxTriageBytes)}}}}, ErrTooLarge},
	} {
		if _, err := s.File(t.Context(), "dev-1", c.req); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// A 3×4K screenshot passes the checks (and then needs the tickets).
	func() {
		defer func() { recover() }()
		_, err := s.File(t.Context(), "dev-1", &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "a"}, Description: "x", ScreenshotPng: pngHeader(11520, 2160)})
		t.Errorf("a 3×4K screenshot was refused: %v", err)
	}()
}
