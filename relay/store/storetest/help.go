package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

var helpTests = []subtest{
	{"RequestsAndAttachments", testHelpRequests},
	{"ArticleHelped", testArticleHelped},
}

func testHelpRequests(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 123456789)
	shot := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0}, 1000)
	if err := s.PutHelpRequest(ctx, store.HelpRequest{Ticket: "DS-AAAA", DeviceID: "dev-1", Login: "alice", CreatedAt: at},
		[]store.TicketAttachment{{Name: "screenshot.png", ContentType: "image/png", Data: shot}, {Name: "triage.pb", ContentType: "application/x-protobuf", Data: []byte{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	for i, r := range []store.HelpRequest{
		{Ticket: "DS-BBBB", DeviceID: "dev-1", Login: "alice", CreatedAt: at.Add(time.Minute)},
		{Ticket: "DS-CCCC", DeviceID: "dev-1", Login: "bob", CreatedAt: at},
		{Ticket: "DS-DDDD", DeviceID: "dev-2", Login: "alice", CreatedAt: at},
	} {
		if err := s.PutHelpRequest(ctx, r, nil); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	if err := s.PutHelpRequest(ctx, store.HelpRequest{Ticket: "DS-AAAA", DeviceID: "dev-9", Login: "eve", CreatedAt: at}, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second help request for a ticket: %v", err)
	}
	h, err := s.HelpRequest(ctx, "DS-AAAA")
	if err != nil || h.DeviceID != "dev-1" || h.Login != "alice" || !h.CreatedAt.Equal(at) {
		t.Fatalf("HelpRequest: %+v %v", h, err)
	}
	if _, err := s.HelpRequest(ctx, "DS-ZZZZ"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing help request: %v", err)
	}
	hs, err := s.HelpRequestsOf(ctx, "dev-1", "alice", 0)
	if err != nil || len(hs) != 2 || hs[0].Ticket != "DS-BBBB" || hs[1].Ticket != "DS-AAAA" {
		t.Fatalf("alice on dev-1: %+v %v", hs, err)
	}
	if hs, err := s.HelpRequestsOf(ctx, "dev-1", "alice", 1); err != nil || len(hs) != 1 || hs[0].Ticket != "DS-BBBB" {
		t.Fatalf("alice on dev-1, limit 1: %+v %v", hs, err)
	}
	if hs, err := s.HelpRequestsOf(ctx, "dev-1", "ALICE", 0); err != nil || len(hs) != 0 {
		t.Fatalf("logins match exactly: %+v %v", hs, err)
	}
	as, err := s.TicketAttachments(ctx, "DS-AAAA", false)
	if err != nil || len(as) != 2 || as[0].Name != "screenshot.png" || as[0].Size != int64(len(shot)) || as[0].Data != nil ||
		as[1].ContentType != "application/x-protobuf" || !as[0].CreatedAt.Equal(at) {
		t.Fatalf("attachments without data: %+v %v", as, err)
	}
	as, err = s.TicketAttachments(ctx, "DS-AAAA", true)
	if err != nil || len(as) != 2 || !bytes.Equal(as[0].Data, shot) || !bytes.Equal(as[1].Data, []byte{1, 2}) {
		t.Fatalf("attachments with data: %v", err)
	}
	if as, err := s.TicketAttachments(ctx, "DS-BBBB", true); err != nil || len(as) != 0 {
		t.Fatalf("no attachments: %+v %v", as, err)
	}
}

func testArticleHelped(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, want := range []int64{1, 2, 3} {
		n, err := s.ArticleHelped(ctx, 7, "dev-1", "alice", time.Unix(int64(i), 0))
		if err != nil || n != want {
			t.Fatalf("helped %d: %d %v", i, n, err)
		}
	}
	if n, err := s.ArticleHelped(ctx, 8, "dev-1", "alice", time.Unix(0, 0)); err != nil || n != 1 {
		t.Fatalf("another article: %d %v", n, err)
	}
	for id, want := range map[int64]int64{7: 3, 8: 1, 9: 0} {
		if n, err := s.ArticleHelpedCount(ctx, id); err != nil || n != want {
			t.Fatalf("count of %d: %d %v, want %d", id, n, err, want)
		}
	}
}
