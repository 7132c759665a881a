package link

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// TestHelpCalls: the Get help calls are answered by ref_id (an answer or
// a refusing Ack), fail at once without a stream and when the stream
// drops, and pushes reach OnHelpUpdate in order and are acknowledged.
func TestHelpCalls(t *testing.T) {
	updates := make(chan *desksidev1.HelpUpdate, 4)
	h := newHarness(t, func(c *Config) { c.OnHelpUpdate = func(u *desksidev1.HelpUpdate) { updates <- u } })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := h.link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: "alice"}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("before the stream: %v", err)
	}
	rs := h.stream()
	rs.connected(t)
	h.connected(true)

	type result struct {
		f   *desksidev1.HelpRequestFiled
		err error
	}
	call := func(req *desksidev1.FileHelpRequest) chan result {
		ch := make(chan result, 1)
		go func() {
			f, err := h.link.FileHelpRequest(ctx, req)
			ch <- result{f, err}
		}()
		return ch
	}
	next := func() *desksidev1.AgentMessage {
		t.Helper()
		for {
			m := rs.next(t)
			if m.GetHealth() == nil {
				return m
			}
		}
	}
	got := call(&desksidev1.FileHelpRequest{Description: "broken"})
	m := next()
	if m.GetFileHelpRequest().GetDescription() != "broken" || m.GetId() == 0 {
		t.Fatalf("sent %v", m)
	}
	rs.send(t, &desksidev1.RelayMessage{RefId: m.GetId(), Body: &desksidev1.RelayMessage_HelpRequestFiled{HelpRequestFiled: &desksidev1.HelpRequestFiled{Code: "DS-ABCD"}}})
	if r := <-got; r.err != nil || r.f.GetCode() != "DS-ABCD" {
		t.Fatalf("filed: %v %v", r.f, r.err)
	}

	got = call(&desksidev1.FileHelpRequest{Description: "again"})
	m = next()
	rs.ack(t, m.GetId(), &desksidev1.Ack{Error: &desksidev1.AckError{Code: desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED, Message: "too many"},
		RetryAfter: durationpb.New(time.Minute)})
	var rr *RelayRefusal
	if r := <-got; !errors.As(r.err, &rr) || rr.Code != desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED || rr.RetryAfter != time.Minute {
		t.Fatalf("refused: %v", r.err)
	}

	for i, text := range []string{"first", "second"} {
		rs.send(t, &desksidev1.RelayMessage{Id: uint64(40 + i), Body: &desksidev1.RelayMessage_HelpUpdate{HelpUpdate: &desksidev1.HelpUpdate{
			Login: "alice", Entry: &desksidev1.MyRequestEntry{Kind: "reply", Text: text}}}})
	}
	for i, text := range []string{"first", "second"} {
		select {
		case u := <-updates:
			if u.GetEntry().GetText() != text {
				t.Fatalf("update %d: %v", i, u)
			}
		case <-time.After(wait):
			t.Fatalf("no update %d", i)
		}
		if m := next(); m.GetRefId() != uint64(40+i) || m.GetHelpUpdateSeen() == nil {
			t.Fatalf("ack of update %d: %v", i, m)
		}
	}

	// The stream drops while a call waits.
	got = call(&desksidev1.FileHelpRequest{Description: "lost"})
	next()
	rs.end <- errors.New("relay restarting")
	if r := <-got; !errors.Is(r.err, ErrStreamLost) {
		t.Fatalf("stream lost: %v", r.err)
	}
}
