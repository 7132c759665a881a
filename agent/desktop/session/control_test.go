package session

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseControl(t *testing.T) {
	big := strings.Repeat("x", MaxClipboardText)
	for _, tt := range []struct {
		name string
		in   string
		want controlRequest
		ok   bool
	}{
		{name: "clipboard", in: `{"t":"clipboard","text":"hi ✓"}`, want: controlRequest{T: typeClipboard, Text: "hi ✓"}, ok: true},
		{name: "empty clipboard", in: `{"t":"clipboard","text":""}`, want: controlRequest{T: typeClipboard}, ok: true},
		{name: "clipboard at the limit", in: `{"t":"clipboard","text":"` + big + `"}`, want: controlRequest{T: typeClipboard, Text: big}, ok: true},
		{name: "clipboard over the limit", in: `{"t":"clipboard","text":"` + big + `y"}`},
		{name: "clipboard without text", in: `{"t":"clipboard"}`},
		{name: "clipboard text not a string", in: `{"t":"clipboard","text":5}`},
		{name: "monitor", in: `{"t":"monitor","id":1}`, want: controlRequest{T: typeMonitor, ID: 1}, ok: true},
		{name: "all monitors", in: `{"t":"monitor","id":-1}`, want: controlRequest{T: typeMonitor, ID: AllMonitors}, ok: true},
		{name: "monitor below -1", in: `{"t":"monitor","id":-2}`},
		{name: "monitor without id", in: `{"t":"monitor"}`},
		{name: "monitor id fraction", in: `{"t":"monitor","id":1.5}`},
		{name: "monitor id string", in: `{"t":"monitor","id":"1"}`},
		{name: "monitor id huge", in: `{"t":"monitor","id":1e40}`},
		{name: "unknown type", in: `{"t":"reboot"}`},
		{name: "agent's own type", in: `{"t":"monitors","list":[]}`},
		{name: "not JSON", in: `{"t":`},
		{name: "array", in: `[1,2]`},
		{name: "empty", in: ``},
		{name: "too large", in: `{"t":"monitor","id":1,"pad":"` + strings.Repeat(" ", MaxControlMessage) + `"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseControl([]byte(tt.in))
			if ok != tt.ok || got != tt.want {
				t.Fatalf("parseControl = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"t":"clipboard","text":"hello"}`,
		`{"t":"monitor","id":-1}`,
		`{"t":"monitor","id":3}`,
		`{"t":"x"}`,
		`{"t":"clipboard","text":"\u00e9\ud83d\ude42"}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, ok := parseControl(data)
		if !ok {
			return
		}
		switch req.T {
		case typeClipboard:
			if len(req.Text) > MaxClipboardText {
				t.Fatalf("clipboard text of %d bytes accepted", len(req.Text))
			}
		case typeMonitor:
			if req.ID < AllMonitors {
				t.Fatalf("monitor %d accepted", req.ID)
			}
		default:
			t.Fatalf("type %q accepted", req.T)
		}
	})
}

func TestEncodeMessages(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  any
		want string
	}{
		{name: "monitors", msg: monitorsMsg{T: typeMonitors, List: []monitorJSON{{ID: 0, Name: "DP-1", W: 1920, H: 1080, Primary: true}}, Current: -1},
			want: `{"t":"monitors","list":[{"id":0,"name":"DP-1","x":0,"y":0,"w":1920,"h":1080,"primary":true}],"current":-1}`},
		{name: "no monitors is an empty list", msg: monitorsMsg{T: typeMonitors, List: []monitorJSON{}, Current: 0},
			want: `{"t":"monitors","list":[],"current":0}`},
		{name: "cursor", msg: cursorMsg{T: typeCursor, X: -3, Y: 7, Visible: false}, want: `{"t":"cursor","x":-3,"y":7,"visible":false}`},
		{name: "cursor shape", msg: cursorShapeMsg{T: typeCursorShape, W: 2, H: 3, HX: 1, HY: 0, PNG: []byte{0x89, 'P', 'N', 'G'}},
			want: `{"t":"cursorshape","w":2,"h":3,"hx":1,"hy":0,"png":"iVBORw=="}`},
		{name: "clipboard keeps <>&", msg: clipboardMsg{T: typeClipboard, Text: "<a & b>\n\"q\""}, want: `{"t":"clipboard","text":"<a & b>\n\"q\""}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(encode(tt.msg))
			if got != tt.want {
				t.Fatalf("encode = %s\nwant     %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatal("not valid JSON")
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abc", 2, "ab"}, {"aé", 2, "a"}, {"a世b", 2, "a"}, {"a世b", 4, "a世"}, {"x", 0, ""}, {"x", -4, ""},
	} {
		if got := truncateUTF8(tt.s, tt.n); got != tt.want || !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
