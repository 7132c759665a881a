package tray

import (
	"context"
	"errors"
	"strings"
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func item(t *testing.T, items []Item, id ItemID) Item {
	t.Helper()
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("no item %s in %v", id, items)
	return Item{}
}

// TestMenu: the items, labels and enabled/visible flags for each state,
// without a display.
func TestMenu(t *testing.T) {
	for _, c := range []struct {
		name  string
		s     MenuState
		conn  string
		mine  string
		who   string // "" when no session items show
		ended bool
	}{
		{name: "agent unreachable", s: MenuState{}, conn: "Deskside agent not reachable", mine: "My requests"},
		{name: "offline", s: MenuState{Reachable: true}, conn: "Offline: requests are sent when back online", mine: "My requests"},
		{name: "connected, 3 new", s: MenuState{Reachable: true, Connected: true, Unread: 3}, conn: "Connected to your IT team", mine: "My requests (3 new)"},
		{name: "many new", s: MenuState{Reachable: true, Connected: true, Unread: 120}, conn: "Connected to your IT team", mine: "My requests (99+ new)"},
		{name: "viewing", s: MenuState{Reachable: true, Connected: true, Session: SessionState{Active: true, Technician: "Dana (tier 2)"}},
			conn: "Connected to your IT team", mine: "My requests", who: "Dana (tier 2) is viewing your screen"},
		{name: "controlling, unnamed", s: MenuState{Reachable: true, Connected: true, Unread: 12, Session: SessionState{Active: true, Control: true}},
			conn: "Connected to your IT team", mine: "My requests (12 new)", who: "A technician is controlling your screen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			items := Menu(c.s)
			if len(items) != 9 {
				t.Fatalf("%d items, want always 9 (systray cannot reorder)", len(items))
			}
			for _, id := range []ItemID{ItemConsent, ItemAllow, ItemDeny} {
				if it := item(t, items, id); it.Visible || it.Enabled {
					t.Errorf("consent item %s without a question: %+v", id, it)
				}
			}
			if it := item(t, items, ItemConnection); it.Label != c.conn || it.Enabled || !it.Visible {
				t.Errorf("connection: %+v", it)
			}
			if it := item(t, items, ItemMyRequests); it.Label != c.mine || !it.Enabled || !it.Visible {
				t.Errorf("my requests: %+v", it)
			}
			if it := item(t, items, ItemGetHelp); it.Label != "Get help…" || !it.Enabled || !it.Visible {
				t.Errorf("get help: %+v", it)
			}
			sess, end := item(t, items, ItemSession), item(t, items, ItemEndSession)
			if c.who == "" {
				if sess.Visible || end.Visible || end.Enabled {
					t.Errorf("session items shown without a session: %+v %+v", sess, end)
				}
				if !strings.HasSuffix(Tooltip(c.s), c.conn) {
					t.Errorf("tooltip %q", Tooltip(c.s))
				}
				return
			}
			if sess.Label != c.who || !sess.Visible || sess.Enabled {
				t.Errorf("session: %+v", sess)
			}
			if end.Label != "End session" || !end.Visible || !end.Enabled {
				t.Errorf("end session: %+v", end)
			}
			if Tooltip(c.s) != "Deskside — "+c.who {
				t.Errorf("tooltip %q", Tooltip(c.s))
			}
		})
	}
}

// TestMenuConsent: while a consent question is open the menu shows it
// with "Allow…" (which opens the page, where Allow takes a click) and
// "Deny", first, and the tooltip is the question.
func TestMenuConsent(t *testing.T) {
	q := ConsentQuestion{ID: 7, Text: "dana (tier 2) wants to control your screen for ticket DS-7K3Q."}
	for _, c := range []struct {
		name string
		s    MenuState
	}{
		{name: "question", s: MenuState{Reachable: true, Connected: true, Consent: q}},
		{name: "question during a session", s: MenuState{Reachable: true, Connected: true, Consent: q, Session: SessionState{Active: true, Technician: "Dana"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			items := Menu(c.s)
			if len(items) != 9 || items[0].ID != ItemConsent || items[1].ID != ItemAllow || items[2].ID != ItemDeny {
				t.Fatalf("the consent items are not first: %+v", items)
			}
			if it := items[0]; it.Label != q.Text || it.Enabled || !it.Visible {
				t.Errorf("question: %+v", it)
			}
			if it := items[1]; it.Label != "Allow…" || !it.Enabled || !it.Visible {
				t.Errorf("allow: %+v", it)
			}
			if it := items[2]; it.Label != "Deny" || !it.Enabled || !it.Visible {
				t.Errorf("deny: %+v", it)
			}
			if got := Tooltip(c.s); got != "Deskside — "+q.Text {
				t.Errorf("tooltip %q", got)
			}
			if it := item(t, items, ItemEndSession); it.Visible != c.s.Session.Active {
				t.Errorf("end session: %+v", it)
			}
		})
	}
	if it := Menu(MenuState{Consent: ConsentQuestion{ID: 1}})[0]; it.Label != "A technician asks to see your screen." {
		t.Errorf("a question without text: %+v", it)
	}
}

// TestTrayClicks: each item does its action — the page opens with the
// launch secret, My requests clears the unread count, End session ends
// the agent's session, Quit quits.
func TestTrayClicks(t *testing.T) {
	a := NewLinkAgent(nil, &desksidev1.HelpUser{Login: "alice"})
	srv, err := StartServer(ServerOptions{Agent: a})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var opened []string
	tr := NewTray(a, srv, func(u string) error { opened = append(opened, u); return nil }, nil)
	quit := false
	tr.Quit = func() { quit = true }
	ctx := context.Background()

	if err := tr.Click(ctx, ItemGetHelp); err != nil || len(opened) != 1 || opened[0] != srv.URL("") || !strings.Contains(opened[0], "/launch?k=") {
		t.Fatalf("get help opened %v (%v)", opened, err)
	}
	tr.Updated(&desksidev1.HelpUpdate{Login: "alice", Request: &desksidev1.MyRequest{Code: "DS-1"}, Entry: &desksidev1.MyRequestEntry{Kind: "reply", Technician: "Dana", Text: "hi"}})
	tr.Updated(&desksidev1.HelpUpdate{Login: "alice", Request: &desksidev1.MyRequest{Code: "DS-1"}, Entry: &desksidev1.MyRequestEntry{Kind: "reply", FromUser: true, Text: "mine"}})
	tr.Updated(&desksidev1.HelpUpdate{Login: "alice", Request: &desksidev1.MyRequest{Code: "DS-1", PickedUp: true}})
	if got := item(t, Menu(tr.State()), ItemMyRequests).Label; got != "My requests (2 new)" {
		t.Fatalf("after a reply, the user's own reply and a pick-up: %q", got)
	}
	select {
	case <-tr.Changes():
	default:
		t.Fatal("no change signalled")
	}
	if err := tr.Click(ctx, ItemMyRequests); err != nil || opened[1] != srv.URL("requests") {
		t.Fatalf("my requests opened %v (%v)", opened, err)
	}
	if got := item(t, Menu(tr.State()), ItemMyRequests).Label; got != "My requests" {
		t.Fatalf("after opening My requests: %q", got)
	}

	if err := tr.Click(ctx, ItemEndSession); !errors.Is(err, ErrNoSession) {
		t.Fatalf("end without a session: %v", err)
	}
	ended := false
	a.SetSession(SessionState{Active: true, Technician: "Dana", Control: true}, func(context.Context) error {
		ended = true
		a.SetSession(SessionState{}, nil)
		return nil
	})
	if s := tr.State(); !item(t, Menu(s), ItemEndSession).Enabled {
		t.Fatalf("no End session during a session: %+v", s)
	}
	if err := tr.Click(ctx, ItemEndSession); err != nil || !ended || tr.State().Session.Active {
		t.Fatalf("end session: %v ended=%v state=%+v", err, ended, tr.State())
	}
	if err := tr.Click(ctx, ItemDeny); !errors.Is(err, ErrNoConsent) {
		t.Fatalf("deny without a question: %v", err)
	}
	if err := tr.Click(ctx, ItemAllow); err != nil || opened[len(opened)-1] != srv.URL("consent") {
		t.Fatalf("allow… opened %v (%v)", opened, err)
	}
	tr.Click(ctx, ItemQuit)
	if !quit {
		t.Fatal("quit did not quit")
	}
}

// TestIcon: the icons are PNGs (and an ICO wrapping one for Windows).
func TestIcon(t *testing.T) {
	for _, s := range []bool{false, true} {
		if p := iconPNG(s); !isPNG(p) {
			t.Fatalf("icon (session %v) is no PNG", s)
		}
	}
	ico := iconICO(iconPNG(false))
	if string(ico[:4]) != "\x00\x00\x01\x00" || !isPNG(ico[22:]) {
		t.Fatalf("ico header % x", ico[:22])
	}
}

// TestLinkAgentPush: only the tray user's pushes reach the page, and a
// tray that stops reading never blocks the agent link.
func TestLinkAgentPush(t *testing.T) {
	a := NewLinkAgent(nil, &desksidev1.HelpUser{Login: "alice"})
	a.Push(&desksidev1.HelpUpdate{Login: "bob", Request: &desksidev1.MyRequest{Code: "DS-B"}})
	for i := range 100 {
		a.Push(&desksidev1.HelpUpdate{Login: "alice", Request: &desksidev1.MyRequest{Code: "DS-A", Subject: itoa(i % 10)}})
	}
	if n := len(a.Updates()); n != 64 {
		t.Fatalf("%d pushes queued, want the newest 64", n)
	}
	for range 64 {
		if u := <-a.Updates(); u.GetLogin() != "alice" {
			t.Fatalf("another user's push reached the tray: %v", u)
		}
	}
}
