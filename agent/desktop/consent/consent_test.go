package consent

import (
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/desktop/session"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestText(t *testing.T) {
	r := session.ConsentRequest{Technician: "alice", Tier: 1, Ticket: "DS-7K3Q"}
	if got, want := r.Text(), "alice (tier 1) wants to view your screen for ticket DS-7K3Q."; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	r = session.ConsentRequest{Technician: "bob", Tier: 2, Control: true}
	if got, want := r.Notice(), "bob (tier 2) is now controlling your screen."; got != want {
		t.Errorf("Notice() = %q, want %q", got, want)
	}
}

// The question names the request, warns, and gives the timeout; on
// Windows it says which button allows.
func TestQuestion(t *testing.T) {
	r := session.ConsentRequest{Technician: "alice", Tier: 2, Control: true}
	if got, want := question(r, askTimeout(r), ""), r.Text()+"\n\nAllow only if you asked for help. No answer within 30s denies."; got != want {
		t.Errorf("question = %q, want %q", got, want)
	}
	r.Timeout = 1500 * time.Millisecond
	if got := question(r, askTimeout(r), windowsButtons); !strings.HasSuffix(got, "help. Yes allows, No denies. No answer within 2s denies.") {
		t.Errorf("the Windows question = %q", got)
	}
}

func TestMessageBoxAnswers(t *testing.T) {
	for _, c := range []struct {
		resp uint32
		want desksidev1.DesktopConsent_Answer
		err  bool
	}{
		{idYes, desksidev1.DesktopConsent_ANSWER_ALLOWED, false},
		{idNo, desksidev1.DesktopConsent_ANSWER_DENIED, false},
		{idTimeout, desksidev1.DesktopConsent_ANSWER_NO_ANSWER, false},
		{idAsync, 0, true},
		{1 /* IDOK */, 0, true},
		{0, 0, true},
	} {
		got, err := answerOf(c.resp)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("answer %d = %v, %v; want %v (error %v)", c.resp, got, err, c.want, c.err)
		}
	}
	// MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2|MB_SYSTEMMODAL|MB_SETFOREGROUND:
	// No is the default button.
	if askStyle != 0x00011124 {
		t.Errorf("askStyle = %#x", askStyle)
	}
	if noticeStyle&0xF != mbOK {
		t.Errorf("the notice is not an OK box: %#x", noticeStyle)
	}
}
