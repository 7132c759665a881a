package wire

import "google.golang.org/protobuf/reflect/protoreflect"

// ReplyTexts are the free-text fields of an agent's replies to relay
// requests, with their rune caps. They reach the audit log and the
// console, so CleanTexts cleans and caps them like every other agent
// value (ADR 7). Replies are not passed through Caps.Sanitize as a whole:
// a desktop signal's SDP needs its line breaks and its length.
var ReplyTexts = map[protoreflect.FullName]int{
	"deskside.v1.RequestError.message":     1024,
	"deskside.v1.CommandExit.error":        1024,
	"deskside.v1.ActionResult.message":     2048,
	"deskside.v1.DesktopEnded.reason":      1024,
	"deskside.v1.DesktopEnded.session_id":  64,
	"deskside.v1.DesktopSignal.session_id": 64,
}

// CleanTexts cleans and caps, in place, each string field of m (and of the
// messages inside it) that ReplyTexts lists: valid UTF-8, no control or
// bidi characters, no terminal escapes, at most its cap in runes (see
// CleanString). Other fields are left as they are.
func CleanTexts(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap():
			if n, ok := ReplyTexts[fd.FullName()]; ok {
				if c := CleanString(v.String(), n); c != v.String() {
					m.Set(fd, protoreflect.ValueOfString(c))
				}
			}
		case fd.Message() != nil && fd.IsList():
			l := v.List()
			for i := range l.Len() {
				CleanTexts(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			CleanTexts(v.Message())
		}
		return true
	})
}
