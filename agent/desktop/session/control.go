package session

import (
	"bytes"
	"encoding/json"
	"image"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
)

// The control channel ("control", created by the agent, ordered) carries
// JSON text messages, one per data-channel message.
//
// Agent → viewer:
//
//	{"t":"monitors","list":[{"id":0,"name":"DP-1","x":0,"y":0,"w":1920,"h":1080,"primary":true}],"current":-1}
//	    the desktop's monitors and the one shown (-1: all); sent when the
//	    channel opens, when the layout changes and after each "monitor"
//	    request
//	{"t":"cursor","x":X,"y":Y,"visible":true}
//	    the pointer, relative to the captured area's top-left corner;
//	    visible is false when it is outside the area; at most ~30 a second
//	    and only when it moved (or the area changed)
//	{"t":"cursorshape","w":W,"h":H,"hx":HX,"hy":HY,"png":"<base64>"}
//	    the pointer's image (PNG with alpha, at most 256×256) and hot
//	    spot; sent when the channel opens and when it changes
//	{"t":"clipboard","text":"…"}
//	    the desktop's new CLIPBOARD text (control sessions only), at most
//	    MaxClipboardText bytes (and what fits in the viewer's largest
//	    message); longer texts are cut at a character boundary
//
// Viewer → agent:
//
//	{"t":"clipboard","text":"…"}  put text on the desktop's clipboard
//	                               (control sessions only; at most
//	                               MaxClipboardText bytes)
//	{"t":"monitor","id":N}         show monitor N, or -1 for all
//
// Unknown types and malformed or oversized messages are ignored.

// MaxClipboardText is the longest clipboard text, in bytes, either way.
const MaxClipboardText = 1 << 20

// MaxControlMessage is the largest message the viewer may send on any
// data channel: MaxClipboardText and room for its JSON escaping.
const MaxControlMessage = 2 << 20

// maxPointerBuffered is how much may wait in the control channel's send
// buffer before pointer positions are held back; the latest is sent when
// it drains below lowBuffered.
const (
	maxPointerBuffered = 256 << 10
	lowBuffered        = 64 << 10
)

// maxMonitorName caps a monitor's name in "monitors".
const maxMonitorName = 64

// Message types.
const (
	typeMonitors    = "monitors"
	typeCursor      = "cursor"
	typeCursorShape = "cursorshape"
	typeClipboard   = "clipboard"
	typeMonitor     = "monitor"
)

type monitorJSON struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	X       int    `json:"x"`
	Y       int    `json:"y"`
	W       int    `json:"w"`
	H       int    `json:"h"`
	Primary bool   `json:"primary"`
}

type monitorsMsg struct {
	T       string        `json:"t"`
	List    []monitorJSON `json:"list"`
	Current int           `json:"current"`
}

type cursorMsg struct {
	T       string `json:"t"`
	X       int    `json:"x"`
	Y       int    `json:"y"`
	Visible bool   `json:"visible"`
}

type cursorShapeMsg struct {
	T   string `json:"t"`
	W   int    `json:"w"`
	H   int    `json:"h"`
	HX  int    `json:"hx"`
	HY  int    `json:"hy"`
	PNG []byte `json:"png"` // base64 by encoding/json
}

type clipboardMsg struct {
	T    string `json:"t"`
	Text string `json:"text"`
}

// controlRequest is a message from the viewer, checked.
type controlRequest struct {
	T    string // typeClipboard or typeMonitor
	Text string // clipboard
	ID   int    // monitor
}

// parseControl decodes a viewer message; ok is false for anything the
// agent does not act on (bad JSON, unknown type, missing or bad fields,
// too large).
func parseControl(data []byte) (req controlRequest, ok bool) {
	if len(data) > MaxControlMessage {
		return req, false
	}
	var m struct {
		T    string  `json:"t"`
		Text *string `json:"text"`
		ID   *int    `json:"id"`
	}
	if json.Unmarshal(data, &m) != nil {
		return req, false
	}
	switch m.T {
	case typeClipboard:
		if m.Text == nil || len(*m.Text) > MaxClipboardText {
			return req, false
		}
		return controlRequest{T: typeClipboard, Text: *m.Text}, true
	case typeMonitor:
		if m.ID == nil || *m.ID < AllMonitors {
			return req, false
		}
		return controlRequest{T: typeMonitor, ID: *m.ID}, true
	}
	return req, false
}

// encode marshals a message without HTML escaping (the text is not HTML).
func encode(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil // the message types cannot fail
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// createControl creates the control channel and its handlers.
func (s *Session) createControl(pc *webrtc.PeerConnection) error {
	ordered := true
	dc, err := pc.CreateDataChannel("control", &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ctl = dc
	s.mu.Unlock()
	dc.SetBufferedAmountLowThreshold(lowBuffered)
	dc.OnBufferedAmountLow(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pointer.pending {
			s.sendPointerLocked()
		}
	})
	dc.OnOpen(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ctlOpen = true
		s.sendMonitorsLocked()
		if s.shape != nil {
			s.sendLocked(s.shape)
		}
		s.pointer.sent = false
		s.sendPointerLocked()
	})
	dc.OnClose(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ctlOpen = false
	})
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { s.onControl(msg.Data) })
	return nil
}

// onControl acts on a message from the viewer.
func (s *Session) onControl(data []byte) {
	req, ok := parseControl(data)
	if !ok {
		return
	}
	switch req.T {
	case typeClipboard:
		if !s.control || s.clip == nil {
			return
		}
		s.mu.Lock()
		s.lastClip, s.haveClip = req.Text, true
		s.mu.Unlock()
		if err := s.clip.SetText(req.Text); err != nil {
			s.log.Debug("clipboard not set", logKeySession, s.id, logKeyError, err)
		}
	case typeMonitor:
		s.mu.Lock()
		known := req.ID == AllMonitors
		for _, m := range s.monitors {
			known = known || m.ID == req.ID
		}
		if !known {
			s.log.Debug("the viewer asked for an unknown monitor", logKeySession, s.id, logKeyMonitor, req.ID)
			s.sendMonitorsLocked()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		// The latest choice wins; the stream loop is the only reader.
		select {
		case <-s.monitorReq:
		default:
		}
		select {
		case s.monitorReq <- req.ID:
		default:
		}
	}
}

// sendLocked sends a message when the channel is open. Sends do not
// block: pion buffers them.
func (s *Session) sendLocked(msg []byte) {
	if !s.ctlOpen || msg == nil {
		return
	}
	if err := s.ctl.SendText(string(msg)); err != nil {
		s.log.Debug("control message not sent", logKeySession, s.id, logKeyError, err)
	}
}

func (s *Session) sendMonitorsLocked() {
	if s.monitors == nil {
		return
	}
	m := monitorsMsg{T: typeMonitors, List: make([]monitorJSON, 0, len(s.monitors)), Current: s.current}
	for _, mon := range s.monitors {
		name := mon.Name
		if len(name) > maxMonitorName {
			name = truncateUTF8(name, maxMonitorName)
		}
		m.List = append(m.List, monitorJSON{ID: mon.ID, Name: name, X: mon.X, Y: mon.Y, W: mon.Width, H: mon.Height, Primary: mon.Primary})
	}
	s.sendLocked(encode(m))
}

// sendPointerLocked sends the pointer relative to the captured area when
// that differs from what was sent last, unless the channel is backed up.
func (s *Session) sendPointerLocked() {
	p := &s.pointer
	if !s.ctlOpen || !p.known || s.area.Empty() {
		return
	}
	x, y := p.x-s.area.Min.X, p.y-s.area.Min.Y
	visible := p.onScreen && image.Pt(p.x, p.y).In(s.area)
	if p.sent && x == p.sentX && y == p.sentY && visible == p.sentVisible {
		p.pending = false
		return
	}
	if s.ctl.BufferedAmount() > maxPointerBuffered {
		p.pending = true
		return
	}
	p.sent, p.pending, p.sentX, p.sentY, p.sentVisible = true, false, x, y, visible
	s.sendLocked(encode(cursorMsg{T: typeCursor, X: x, Y: y, Visible: visible}))
}

// onPointer is the cursor follower's position callback.
func (s *Session) onPointer(x, y int, onScreen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pointer.known, s.pointer.x, s.pointer.y, s.pointer.onScreen = true, x, y, onScreen
	s.sendPointerLocked()
}

// onCursorShape is the cursor follower's image callback.
func (s *Session) onCursorShape(c CursorShape) {
	msg := encode(cursorShapeMsg{T: typeCursorShape, W: c.Width, H: c.Height, HX: c.HotX, HY: c.HotY, PNG: c.PNG})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shape = msg
	s.sendLocked(msg)
}

// onDesktopClipboard is the clipboard's change callback: the desktop has
// new text for the viewer.
func (s *Session) onDesktopClipboard(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.haveClip && text == s.lastClip {
		return // the viewer's own text coming back, or no change
	}
	s.lastClip, s.haveClip = text, true
	if !s.ctlOpen {
		return
	}
	full := len(text)
	text = truncateUTF8(text, MaxClipboardText)
	limit := s.maxMessage()
	msg := encode(clipboardMsg{T: typeClipboard, Text: text})
	for len(msg) > limit && len(text) > 0 {
		// Cut in proportion to the escaped size, a little more each time.
		n := len(text) * (limit - 64) / len(msg)
		text = truncateUTF8(text, min(n, len(text)-1))
		msg = encode(clipboardMsg{T: typeClipboard, Text: text})
	}
	if len(text) < full {
		s.log.Info("clipboard text cut to fit the viewer", logKeySession, s.id, logKeyBytes, len(text))
	}
	s.sendLocked(msg)
}

// maxMessage is the largest message the viewer accepts (its SDP's
// max-message-size; pion assumes 64 KiB when it has none).
func (s *Session) maxMessage() int {
	limit := 65535
	if t := s.pc.SCTP(); t != nil {
		if n := int(t.GetCapabilities().MaxMessageSize); n > 0 {
			limit = n
		}
	}
	return limit
}

// setView records what the capture shows after a changed frame: the area
// on the screen and the monitor. A new monitor (the capture fell back to
// the whole screen) is reported, and the pointer re-sent relative to a
// new area.
func (s *Session) setView(f Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	area := image.Rect(f.X, f.Y, f.X+f.Width, f.Y+f.Height)
	if f.Monitor != s.current {
		s.current = f.Monitor
		s.sendMonitorsLocked()
	}
	if area != s.area {
		s.area = area
		s.sendPointerLocked()
	}
}

// setMonitors records a monitor list, reporting it when it changed.
func (s *Session) setMonitors(mons []Monitor, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && equalMonitors(mons, s.monitors) {
		return
	}
	s.monitors = mons
	s.sendMonitorsLocked()
}

func equalMonitors(a, b []Monitor) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
