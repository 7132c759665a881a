package cli_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestTicketChatAndAttachments: a user files a Get help request through a
// real agent (screenshot and triage report); the technician's `ticket
// chat` line reaches the agent as a push; the user's chat answer and the
// files show in `ticket show`; `ticket attachment` saves the screenshot
// byte for byte, refuses to overwrite, writes to standard output with
// "-o -", and names the files a ticket has when asked for another.
func TestTicketChatAndAttachments(t *testing.T) {
	f := startFleet(t)
	st := f.st.Enroll(t, "chat-host")
	pushes := make(chan *desksidev1.HelpUpdate, 16)
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: staticInventory{"chat-host"}, Health: staticHealth{}, Hostname: "chat-host",
		OnHelpUpdate: func(u *desksidev1.HelpUpdate) { pushes <- u },
	})
	servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errors.New("agent not connected yet")
		}
		return nil
	})
	img := image.NewRGBA(image.Rect(0, 0, 32, 16))
	img.Set(3, 4, color.RGBA{R: 200, A: 255})
	var shot bytes.Buffer
	if err := png.Encode(&shot, img); err != nil {
		t.Fatal(err)
	}
	triage := &desksidev1.CheckReport{Overall: desksidev1.CheckStatus_CHECK_STATUS_FAIL, Results: []*desksidev1.CheckResult{
		{Name: "dns", Status: desksidev1.CheckStatus_CHECK_STATUS_FAIL, Summary: "no resolver answers"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	filed, err := a.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
		User: &desksidev1.HelpUser{Login: "alice", Name: "Alice"}, Description: "No internet since lunch.",
		ScreenshotPng: shot.Bytes(), Triage: triage,
	})
	if err != nil {
		t.Fatal(err)
	}
	code := filed.GetCode()
	c := f.admin(t)

	res := c.must("ticket", "chat", code, "Looking", "at", "it", "now")
	if !strings.Contains(res.stdout, "Chatted on "+code+": open") {
		t.Errorf("ticket chat: %s", res)
	}
	select {
	case u := <-pushes:
		if u.GetEntry().GetKind() != "chat" || u.GetEntry().GetText() != "Looking at it now" || u.GetLogin() != "alice" {
			t.Errorf("push: %v", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent got no push of the chat line")
	}
	if _, err := a.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "thanks, it's the wifi", Chat: true}); err != nil {
		t.Fatal(err)
	}

	res = c.must("ticket", "show", code)
	tech := strings.Index(res.stdout, "chat: Looking at it now")
	user := strings.Index(res.stdout, "chat from requester alice: thanks, it's the wifi")
	if tech < 0 || user < tech {
		t.Errorf("ticket show: chat lines missing or out of order:\n%s", res.stdout)
	}
	for _, want := range []string{"Attachments (save one with `deskside ticket attachment " + code + " NAME -o FILE`)", "screenshot.png", "image/png", "triage.pb"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("ticket show lacks %q:\n%s", want, res.stdout)
		}
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "shot.png")
	res = c.must("ticket", "attachment", code, "screenshot.png", "-o", out)
	if !strings.Contains(res.stderr, "Saved screenshot.png (image/png") {
		t.Errorf("attachment: %s", res)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, shot.Bytes()) {
		t.Fatalf("saved screenshot differs (%v): %d bytes, want %d", err, len(got), shot.Len())
	}
	c.fails(1, "exists: choose another -o FILE, or --force", "ticket", "attachment", code, "screenshot.png", "-o", out)
	c.must("ticket", "attachment", code, "screenshot.png", "-o", out, "--force")

	res = c.must("ticket", "attachment", code, "triage.pb", "-o", "-")
	var rep desksidev1.CheckReport
	if err := proto.Unmarshal([]byte(res.stdout), &rep); err != nil || !proto.Equal(&rep, triage) {
		t.Errorf("triage to stdout: %v %v", err, &rep)
	}
	c.fails(1, "has no attachment \"nope.txt\"; it has: screenshot.png, triage.pb", "ticket", "attachment", code, "nope.txt", "-o", filepath.Join(dir, "x"))
	c.fails(2, "the attachment NAME is required", "ticket", "attachment", code)
	c.fails(2, "the chat TEXT is required", "ticket", "chat", code)

	plain := strings.TrimSpace(c.must("ticket", "new", "--subject", "Desk phone", "-q").stdout)
	c.fails(1, "has no attachments", "ticket", "attachment", plain, "screenshot.png")
	c.must("ticket", "status", code, "resolved")
	c.fails(1, "reopen it first", "ticket", "chat", code, "still there?")
}
