package tray

// The tray menu as a pure model: what items it shows, with which labels
// and whether each is enabled, for a state. The systray front end only
// draws it; tests check it without a display.

// ItemID names a menu item.
type ItemID string

const (
	ItemConsent    ItemID = "consent"
	ItemAllow      ItemID = "consent-allow"
	ItemDeny       ItemID = "consent-deny"
	ItemGetHelp    ItemID = "get-help"
	ItemMyRequests ItemID = "my-requests"
	ItemConnection ItemID = "connection"
	ItemSession    ItemID = "session"
	ItemEndSession ItemID = "end-session"
	ItemQuit       ItemID = "quit"
)

// Item is one menu entry.
type Item struct {
	ID      ItemID
	Label   string
	Enabled bool
	// Visible is false for an item the state does not call for (the
	// session items when no one is connected to the screen).
	Visible bool
}

// MenuState is what the menu depends on.
type MenuState struct {
	// Connected: the agent reaches the relay.
	Connected bool
	// Reachable: the tray reaches the agent at all.
	Reachable bool
	Session   SessionState
	// Unread counts replies the user has not opened My requests for.
	Unread int
	// Consent is the question waiting for the user's answer (ID 0: none).
	Consent ConsentQuestion
}

// Menu returns the items for s, in order. It always has the same items
// (systray cannot reorder), showing or hiding the session ones.
func Menu(s MenuState) []Item {
	conn := "Connected to your IT team"
	switch {
	case !s.Reachable:
		conn = "Deskside agent not reachable"
	case !s.Connected:
		conn = "Offline: requests are sent when back online"
	}
	mine := "My requests"
	if s.Unread > 0 {
		mine = "My requests (" + itoa(s.Unread) + " new)"
	}
	who := s.Session.Technician
	if who == "" {
		who = "A technician"
	}
	verb := "viewing"
	if s.Session.Control {
		verb = "controlling"
	}
	ask := s.Consent.ID != 0
	question := s.Consent.Text
	if question == "" {
		question = "A technician asks to see your screen."
	}
	return []Item{
		// "Allow…" opens the page, where Allow takes a deliberate click;
		// Deny answers at once.
		{ID: ItemConsent, Label: question, Enabled: false, Visible: ask},
		{ID: ItemAllow, Label: "Allow…", Enabled: ask, Visible: ask},
		{ID: ItemDeny, Label: "Deny", Enabled: ask, Visible: ask},
		{ID: ItemSession, Label: who + " is " + verb + " your screen", Enabled: false, Visible: s.Session.Active},
		{ID: ItemEndSession, Label: "End session", Enabled: s.Session.Active, Visible: s.Session.Active},
		{ID: ItemGetHelp, Label: "Get help…", Enabled: true, Visible: true},
		{ID: ItemMyRequests, Label: mine, Enabled: true, Visible: true},
		{ID: ItemConnection, Label: conn, Enabled: false, Visible: true},
		{ID: ItemQuit, Label: "Quit", Enabled: true, Visible: true},
	}
}

// Tooltip is the icon's tooltip for s.
func Tooltip(s MenuState) string {
	show := ItemConnection
	switch {
	case s.Consent.ID != 0:
		show = ItemConsent
	case s.Session.Active:
		show = ItemSession
	}
	for _, it := range Menu(s) {
		if it.ID == show {
			return "Deskside — " + it.Label
		}
	}
	return "Deskside"
}

func itoa(n int) string {
	if n > 99 {
		return "99+"
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}
