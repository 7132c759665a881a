package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/deskside/deskside/agent/link"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/bus/natsbus/natstest"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/service"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

func TestGetHelpSQLite(t *testing.T) {
	testGetHelp(t, servertest.Start(t, servertest.Options{}))
}

func TestGetHelpPostgres(t *testing.T) {
	testGetHelp(t, servertest.Start(t, servertest.Options{Database: pgtest.DSN(t)}))
}

// testPNG is a small real PNG.
func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// helpAgent runs a real agent for a new device, waits until the relay has
// its inventory and health (the ticket snapshot), and returns it with the
// Get help pushes it receives.
func helpAgent(t testing.TB, r *servertest.Relay, host string) (*servertest.Agent, string, chan *desksidev1.HelpUpdate) {
	t.Helper()
	st := r.Enroll(t, host)
	pushes := make(chan *desksidev1.HelpUpdate, 64)
	a := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: &fakeInventory{inv: sampleInventory()}, Health: fakeSampler{}, HealthInterval: 50 * time.Millisecond, Hostname: host,
		OnHelpUpdate: func(u *desksidev1.HelpUpdate) { pushes <- u },
	})
	servertest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !a.Link.Connected() {
			return errNotYet
		}
		if _, err := r.Srv.Store().GetInventory(context.Background(), st.DeviceID); err != nil {
			return err
		}
		_, err := r.Srv.Store().LatestHealth(context.Background(), st.DeviceID)
		return err
	})
	return a, st.DeviceID, pushes
}

func refusal(t *testing.T, err error, want desksidev1.AckErrorCode, what string) *link.RelayRefusal {
	t.Helper()
	var rr *link.RelayRefusal
	if !errors.As(err, &rr) || rr.Code != want {
		t.Fatalf("%s: got %v, want a refusal %v", what, err, want)
	}
	if rr.Message == "" {
		t.Fatalf("%s: refusal without a message", what)
	}
	return rr
}

func nextPush(t *testing.T, ch chan *desksidev1.HelpUpdate, what string) *desksidev1.HelpUpdate {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case <-time.After(10 * time.Second):
		t.Fatalf("no push for %s", what)
	}
	return nil
}

func testGetHelp(t *testing.T, r *servertest.Relay) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	agent, dev, pushes := helpAgent(t, r, "help-host")
	tc, tctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	kbc, kctx := kbClient(t, r, "admin", servertest.AdminPassword)

	// A published article and a draft that both match.
	for _, a := range []struct {
		title, body string
		publish     bool
	}{
		{"Printer offline", "Turn the **printer** off and on.\n\n<script>alert(1)</script>", true},
		{"Printer secrets draft", "Internal printer notes.", false},
	} {
		res, err := kbc.CreateArticle(kctx, &desksidev1.CreateArticleRequest{Title: a.title, BodyMarkdown: a.body, Category: "hardware"})
		if err != nil {
			t.Fatal(err)
		}
		if a.publish {
			if _, err := kbc.PublishArticle(kctx, &desksidev1.PublishArticleRequest{Article: &desksidev1.ArticleRef{Id: res.GetArticle().GetId()}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Watch the queue.
	wctx, stopWatch := context.WithCancel(tctx)
	defer stopWatch()
	watch, err := tc.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	t.Log("search finds only published articles, rendered safe")
	arts, err := agent.Link.SearchHelpArticles(ctx, &desksidev1.SearchHelpArticles{Query: "printer"})
	if err != nil {
		t.Fatal(err)
	}
	if len(arts.GetArticles()) != 1 || arts.GetArticles()[0].GetTitle() != "Printer offline" {
		t.Fatalf("search: %v", arts)
	}
	if h := arts.GetArticles()[0].GetHtml(); !strings.Contains(h, "<strong>printer</strong>") || strings.Contains(h, "<script") {
		t.Fatalf("article html: %q", h)
	}
	alice := &desksidev1.HelpUser{Login: "alice", Name: "Alice Example", Email: "alice@example.com"}
	if err := agent.Link.ArticleHelped(ctx, &desksidev1.ArticleHelped{ArticleId: arts.GetArticles()[0].GetId(), User: alice}); err != nil {
		t.Fatal(err)
	}
	if got, err := kbc.GetArticle(kctx, &desksidev1.GetArticleRequest{Article: &desksidev1.ArticleRef{Id: arts.GetArticles()[0].GetId()}}); err != nil || got.GetArticle().GetHelped() != 1 {
		t.Fatalf("helped count: %v %v", got.GetArticle().GetHelped(), err)
	}
	auditHas(t, r, "device:"+dev, "kb.article_helped", fmt.Sprint(arts.GetArticles()[0].GetId()))
	refusal(t, agent.Link.ArticleHelped(ctx, &desksidev1.ArticleHelped{ArticleId: 99999, User: alice}),
		desksidev1.AckErrorCode_ACK_ERROR_CODE_NOT_FOUND, "helped by a missing article")

	t.Log("filing: ticket in the queue with snapshot, triage and screenshot")
	shot := testPNG(t, 64, 48)
	triage := &desksidev1.CheckReport{Overall: desksidev1.CheckStatus_CHECK_STATUS_WARN, Results: []*desksidev1.CheckResult{
		{Name: "network.dns", Status: desksidev1.CheckStatus_CHECK_STATUS_WARN, Summary: "slow resolver"},
		{Name: "disk.space", Status: desksidev1.CheckStatus_CHECK_STATUS_PASS, Summary: "40% used"},
	}}
	filed, err := agent.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
		User: alice, Category: "printing", Description: "The printer says offline\x1b[31m\nsince this morning.",
		ScreenshotPng: shot, Triage: triage,
	})
	if err != nil {
		t.Fatal(err)
	}
	code := filed.GetCode()
	if !strings.HasPrefix(code, "DS-") || filed.GetRequest().GetSubject() != "The printer says offline" || filed.GetRequest().GetStatus() != "new" {
		t.Fatalf("filed: %v", filed)
	}
	ev, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetKind() != desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED || ev.GetTicket().GetCode() != code {
		t.Fatalf("watch: %v", ev)
	}
	got, err := tc.GetTicket(tctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	tk := got.GetTicket()
	if !tk.GetHasSnapshot() || tk.GetRequester().GetDeviceId() != dev || tk.GetRequester().GetEmail() != "alice@example.com" ||
		tk.GetCategory() != "printing" || tk.GetCreatedBy() != "requester <alice>" {
		t.Fatalf("ticket: %v", tk)
	}
	var triageNote bool
	for _, e := range got.GetTimeline() {
		triageNote = triageNote || (e.GetKind() == desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_NOTE && strings.Contains(e.GetBody(), "network.dns: warn (slow resolver)"))
	}
	if !triageNote {
		t.Fatalf("no triage note on the timeline: %v", got.GetTimeline())
	}
	atts, err := tc.ListTicketAttachments(tctx, &desksidev1.ListTicketAttachmentsRequest{Code: code, WithData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts.GetAttachments()) != 2 || atts.GetAttachments()[0].GetName() != "screenshot.png" || !bytes.Equal(atts.GetAttachments()[0].GetData(), shot) ||
		atts.GetAttachments()[1].GetName() != "triage.pb" {
		t.Fatalf("attachments: %v", atts)
	}
	var gotTriage desksidev1.CheckReport
	if err := proto.Unmarshal(atts.GetAttachments()[1].GetData(), &gotTriage); err != nil || len(gotTriage.GetResults()) != 2 {
		t.Fatalf("triage attachment: %v %v", err, &gotTriage)
	}
	auditHas(t, r, "device:"+dev, "helprequest.file", code)

	t.Log("a technician's note stays on the relay; a reply and a chat line reach the agent in order")
	if _, err := tc.ReplyTicket(tctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "secret: user is on the old driver", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.ReplyTicket(tctx, &desksidev1.ReplyTicketRequest{Code: code, Text: "Is the printer's light green?"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.SendChat(tctx, &desksidev1.SendChatRequest{Code: code, Text: "I'm looking at it now"}); err != nil {
		t.Fatal(err)
	}
	u1, u2 := nextPush(t, pushes, "reply"), nextPush(t, pushes, "chat")
	if u1.GetLogin() != "alice" || u1.GetEntry().GetKind() != "reply" || u1.GetEntry().GetText() != "Is the printer's light green?" ||
		u1.GetEntry().GetTechnician() != "admin" || !u1.GetRequest().GetPickedUp() {
		t.Fatalf("first push: %v", u1)
	}
	if u2.GetEntry().GetKind() != "chat" || u2.GetEntry().GetText() != "I'm looking at it now" || u2.GetEntry().GetId() <= u1.GetEntry().GetId() {
		t.Fatalf("second push: %v", u2)
	}

	t.Log("the user answers by chat and by reply; both are on the timeline in order")
	if _, err := agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: strings.ToLower(code), Text: "yes it is green", Chat: true}); err != nil {
		t.Fatal(err)
	}
	mine, err := agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "Still offline though."})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range mine.GetEntries() {
		kinds = append(kinds, e.GetKind())
		if strings.Contains(e.GetText(), "secret") || strings.Contains(e.GetText(), "Triage") {
			t.Fatalf("an internal note reached the user: %v", e)
		}
	}
	if strings.Join(kinds, ",") != "created,reply,status,chat,chat,reply" {
		t.Fatalf("timeline the user sees: %v", kinds)
	}
	full, err := tc.GetTicket(tctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	var chats []string
	for _, e := range full.GetTimeline() {
		if e.GetKind() == desksidev1.TicketEntryKind_TICKET_ENTRY_KIND_CHAT {
			chats = append(chats, e.GetAuthor()+": "+e.GetBody())
		}
	}
	if strings.Join(chats, "|") != "admin: I'm looking at it now|requester <alice>: yes it is green" {
		t.Fatalf("chat on the timeline: %v", chats)
	}

	t.Log("a status change is pushed")
	if _, err := tc.SetTicketStatus(tctx, &desksidev1.SetTicketStatusRequest{Code: code, Status: desksidev1.TicketStatus_TICKET_STATUS_RESOLVED}); err != nil {
		t.Fatal(err)
	}
	if u := nextPush(t, pushes, "status"); u.GetEntry().GetKind() != "status" || u.GetRequest().GetStatus() != "resolved" {
		t.Fatalf("status push: %v", u)
	}

	t.Log("only this device's and this login's requests")
	list, err := agent.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetRequests()) != 1 || list.GetRequests()[0].GetCode() != code {
		t.Fatalf("alice's requests: %v", list)
	}
	if list, err := agent.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: "bob"}); err != nil || len(list.GetRequests()) != 0 {
		t.Fatalf("bob sees %v (%v)", list, err)
	}
	_, err = agent.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "bob", Code: code, Text: "me too"})
	refusal(t, err, desksidev1.AckErrorCode_ACK_ERROR_CODE_NOT_FOUND, "bob replying to alice's request")
	other, _, _ := helpAgent(t, r, "other-host")
	if list, err := other.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: "alice"}); err != nil || len(list.GetRequests()) != 0 {
		t.Fatalf("alice on another device sees %v (%v)", list, err)
	}
	_, err = other.Link.ReplyToRequest(ctx, &desksidev1.ReplyToRequest{Login: "alice", Code: code, Text: "hello"})
	refusal(t, err, desksidev1.AckErrorCode_ACK_ERROR_CODE_NOT_FOUND, "another device replying")

	t.Log("a hostile agent is refused with clear errors")
	file := func(req *desksidev1.FileHelpRequest) error {
		_, err := agent.Link.FileHelpRequest(ctx, req)
		return err
	}
	ok := func() *desksidev1.FileHelpRequest {
		return &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "alice"}, Description: "It broke."}
	}
	big := ok()
	big.ScreenshotPng = append(append([]byte{}, shot...), make([]byte, 2<<20)...)
	refusal(t, file(big), desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "a 2 MiB+ screenshot")
	notPNG := ok()
	notPNG.ScreenshotPng = []byte("GIF89a not a png")
	refusal(t, file(notPNG), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "a screenshot that is no PNG")
	long := ok()
	long.Description = strings.Repeat("x", 40<<10)
	refusal(t, file(long), desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "a 40 KiB description")
	for _, login := range []string{"", "../../etc/passwd", "alice\x00root", strings.Repeat("a", 200)} {
		bad := ok()
		bad.User.Login = login
		if err := file(bad); err == nil {
			t.Fatalf("login %q accepted", login)
		}
	}
	bigTriage := ok()
	bigTriage.Triage = &desksidev1.CheckReport{}
	for range 300 {
		bigTriage.Triage.Results = append(bigTriage.Triage.Results, &desksidev1.CheckResult{Name: "x"})
	}
	refusal(t, file(bigTriage), desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "a triage report of 300 results")
	refusal(t, file(&desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "alice"}}), desksidev1.AckErrorCode_ACK_ERROR_CODE_INVALID, "no description")
	_, err = agent.Link.SearchHelpArticles(ctx, &desksidev1.SearchHelpArticles{Query: strings.Repeat("printer ", 100)})
	refusal(t, err, desksidev1.AckErrorCode_ACK_ERROR_CODE_TOO_LARGE, "an 800-byte search")

	t.Log("a flood of filings is rate-limited; what was filed stays")
	var limited *link.RelayRefusal
	for i := range 10 {
		err := file(ok())
		if err == nil {
			continue
		}
		limited = refusal(t, err, desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED, "a flood")
		if i != 4 {
			t.Fatalf("refused after %d filings, want 5 per 10 minutes (1 filed before)", i)
		}
		break
	}
	if limited == nil || limited.RetryAfter <= 0 || limited.RetryAfter > 10*time.Minute {
		t.Fatalf("flood refusal: %+v", limited)
	}
	list, err = agent.Link.ListMyRequests(ctx, &desksidev1.ListMyRequests{Login: "alice"})
	if err != nil || len(list.GetRequests()) != 5 || list.GetRequests()[4].GetCode() != code {
		t.Fatalf("after the flood alice has %v (%v)", list, err)
	}
	// The other device is not limited by this one.
	if _, err := other.Link.FileHelpRequest(ctx, ok()); err != nil {
		t.Fatalf("another device's filing: %v", err)
	}
	// A flood of refused requests is cut short as well (60 a minute).
	n := 0
	for ; n < 100; n++ {
		_, err := other.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{User: &desksidev1.HelpUser{Login: "../root"}, Description: "x"})
		var rr *link.RelayRefusal
		if errors.As(err, &rr) && rr.Code == desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED {
			break
		}
	}
	if n < 50 || n >= 60 {
		t.Fatalf("invalid requests rate-limited after %d, want 60 calls a minute in all", n)
	}
	if !agent.Link.Connected() || !other.Link.Connected() {
		t.Fatal("a refused agent lost its stream")
	}
}

// TestGetHelpScaleOut runs two relays on one PostgreSQL and one NATS: a
// request filed through relay A appears in a queue watched on relay B,
// and the technician's reply and chat line sent through B reach the agent
// connected to A, in order.
func TestGetHelpScaleOut(t *testing.T) {
	dsn := pgtest.DSN(t)
	natsURL := natstest.URL(t)
	prefix := natstest.Prefix()
	a, b := servertest.StartPair(t, servertest.Options{Database: dsn, NATSURL: natsURL, NATSPrefix: prefix})

	agent, _, pushes := helpAgent(t, a, "scale-host")
	tcB, ctxB := ticketClient(t, b, "admin", servertest.AdminPassword)
	wctx, stop := context.WithCancel(ctxB)
	defer stop()
	watch, err := tcB.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	filed, err := agent.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
		User: &desksidev1.HelpUser{Login: "alice"}, Description: "VPN drops every hour", ScreenshotPng: testPNG(t, 8, 8)})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := watch.Recv()
	if err != nil || ev.GetKind() != desksidev1.TicketEventKind_TICKET_EVENT_KIND_CREATED || ev.GetTicket().GetCode() != filed.GetCode() {
		t.Fatalf("watch on B: %v %v", ev, err)
	}
	code := filed.GetCode()
	if _, err := tcB.ReplyTicket(ctxB, &desksidev1.ReplyTicketRequest{Code: code, Text: "Which VPN client?"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tcB.SendChat(ctxB, &desksidev1.SendChatRequest{Code: code, Text: "online now if you are"}); err != nil {
		t.Fatal(err)
	}
	u1, u2 := nextPush(t, pushes, "reply through B"), nextPush(t, pushes, "chat through B")
	if u1.GetEntry().GetText() != "Which VPN client?" || u2.GetEntry().GetText() != "online now if you are" || u1.GetRequest().GetCode() != code {
		t.Fatalf("pushes through B: %v / %v", u1, u2)
	}
}

// TestGetHelpFiledInPart: when the relay cannot keep a filed request
// with the user's requests (here its attachments table is gone), the
// ticket still reaches the queue and the audit log, and the agent is told
// its code rather than asked to file again.
func TestGetHelpFiledInPart(t *testing.T) {
	r := servertest.Start(t, servertest.Options{})
	agent, dev, _ := helpAgent(t, r, "part-host")
	db, err := sql.Open("sqlite", filepath.Join(r.Dir, service.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE ticket_attachments`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = agent.Link.FileHelpRequest(ctx, &desksidev1.FileHelpRequest{
		User: &desksidev1.HelpUser{Login: "alice"}, Description: "Screen flickers", ScreenshotPng: testPNG(t, 8, 8)})
	rr := refusal(t, err, desksidev1.AckErrorCode_ACK_ERROR_CODE_UNAVAILABLE, "filed in part")
	i := strings.Index(rr.Message, "DS-")
	if i < 0 || !strings.Contains(rr.Message, "rather than filing again") || strings.Contains(rr.Message, "no such table") {
		t.Fatalf("message: %q", rr.Message)
	}
	code := rr.Message[i : i+7]
	tc, tctx := ticketClient(t, r, "admin", servertest.AdminPassword)
	got, err := tc.GetTicket(tctx, &desksidev1.GetTicketRequest{Code: code})
	if err != nil || got.GetTicket().GetRequester().GetDeviceId() != dev || got.GetTicket().GetSubject() != "Screen flickers" {
		t.Fatalf("ticket %s: %v %v", code, got, err)
	}
	if e := auditHas(t, r, "device:"+dev, "helprequest.file", code); !strings.Contains(e.Detail, "not kept") {
		t.Fatalf("audit detail: %q", e.Detail)
	}
}
