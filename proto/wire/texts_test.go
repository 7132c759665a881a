package wire

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// hostile is what a hostile agent puts in free text: a terminal escape that
// would clear a technician's screen, a bidi override, a NUL, invalid UTF-8
// and a megabyte of padding.
var hostile = "\x1b[2J\x1b]0;pwned\x07evil\u202e\x00txt\xff" + strings.Repeat("A", 1<<20)

func TestCleanTextsReplies(t *testing.T) {
	msgs := []*desksidev1.AgentMessage{
		{Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: hostile}}},
		{Body: &desksidev1.AgentMessage_CommandExit{CommandExit: &desksidev1.CommandExit{Error: hostile}}},
		{Body: &desksidev1.AgentMessage_ActionResult{ActionResult: &desksidev1.ActionResult{Message: hostile}}},
		{Body: &desksidev1.AgentMessage_DesktopEnded{DesktopEnded: &desksidev1.DesktopEnded{SessionId: hostile, Reason: hostile}}},
	}
	for _, m := range msgs {
		CleanTexts(m.ProtoReflect())
		var seen int
		checkStrings(t, m.ProtoReflect(), &seen)
		if seen == 0 {
			t.Fatalf("%T: no string checked", m.GetBody())
		}
	}
	// SDP keeps its line breaks: the signal's offer is not one of the texts.
	sig := &desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_DesktopSignal{DesktopSignal: &desksidev1.DesktopSignal{
		SessionId: "s1", Signal: &desksidev1.DesktopSignal_Offer{Offer: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}}}
	CleanTexts(sig.ProtoReflect())
	if got := sig.GetDesktopSignal().GetOffer(); got != "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" {
		t.Fatalf("offer changed: %q", got)
	}
}

func checkStrings(t *testing.T, m protoreflect.Message, seen *int) {
	t.Helper()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind:
			*seen++
			s := v.String()
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\x00\x07\u202e") || strings.Contains(s, "pwned") {
				t.Errorf("%s not cleaned: %q", fd.FullName(), s[:min(len(s), 40)])
			}
			if n := utf8.RuneCountInString(s); n > ReplyTexts[fd.FullName()] {
				t.Errorf("%s is %d runes, cap %d", fd.FullName(), n, ReplyTexts[fd.FullName()])
			}
		case fd.Message() != nil:
			checkStrings(t, v.Message(), seen)
		}
		return true
	})
}
