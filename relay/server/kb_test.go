package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store/postgres/pgtest"
)

// kbClient signs name in and returns a KnowledgeService client with the
// session.
func kbClient(t *testing.T, r *servertest.Relay, name, pw string) (desksidev1.KnowledgeServiceClient, context.Context) {
	t.Helper()
	_, ctx := r.Console(t, name, pw)
	md, _ := metadata.FromOutgoingContext(ctx)
	return desksidev1.NewKnowledgeServiceClient(r.Dial(t)), metadata.NewOutgoingContext(ctx, md)
}

func TestKnowledgeBaseSQLite(t *testing.T) {
	testKnowledgeBase(t, servertest.Start(t, servertest.Options{}))
}

func TestKnowledgeBasePostgres(t *testing.T) {
	testKnowledgeBase(t, servertest.Start(t, servertest.Options{Database: pgtest.DSN(t)}))
}

func bySlug(s string) *desksidev1.ArticleRef { return &desksidev1.ArticleRef{Slug: s} }

// testKnowledgeBase goes through the knowledge base on a real relay:
// create, edit with the version check, search ranking, publish, ticket
// links, the role rules and the audit.
func testKnowledgeBase(t *testing.T, r *servertest.Relay) {
	addTechTo(t, r, "t1", "tier-one-password", desksidev1.Role_ROLE_TIER1)
	addTechTo(t, r, "t2", "tier-two-password", desksidev1.Role_ROLE_TIER2)
	t1, ctx1 := kbClient(t, r, "t1", "tier-one-password")
	t2, ctx2 := kbClient(t, r, "t2", "tier-two-password")
	admin, actx := kbClient(t, r, "admin", servertest.AdminPassword)

	create := func(title, body string, tags ...string) *desksidev1.Article {
		t.Helper()
		res, err := t1.CreateArticle(ctx1, &desksidev1.CreateArticleRequest{Title: title, BodyMarkdown: body, Category: "hardware", Tags: tags})
		if err != nil {
			t.Fatalf("create %q: %v", title, err)
		}
		return res.GetArticle()
	}
	jam := create("Printer jams", "Open **tray 2** and pull the sheet.\n\n<script>alert(1)</script>[x](javascript:alert(1))", "paper")
	if jam.GetSlug() != "printer-jams" || jam.GetVersion() != 1 || jam.GetState() != desksidev1.ArticleState_ARTICLE_STATE_DRAFT || jam.GetAuthor() != "t1" {
		t.Fatalf("created: %v", jam)
	}
	if h := jam.GetBodyHtml(); !strings.Contains(h, "<strong>tray 2</strong>") || strings.Contains(h, "<script") || strings.Contains(h, "javascript:") {
		t.Fatalf("rendered body: %q", h)
	}
	auditHas(t, r, "t1", "kb.create", "printer-jams")
	create("Office supplies", strings.Repeat("The printer in room 4 is out of paper; printers need care. ", 4))
	create("VPN drops", "Reconnect the client.", "network")

	t.Run("search puts the matching title first", func(t *testing.T) {
		res, err := t1.SearchArticles(ctx1, &desksidev1.SearchArticlesRequest{Query: "printer?"})
		if err != nil {
			t.Fatal(err)
		}
		hits := res.GetHits()
		if len(hits) != 2 || hits[0].GetArticle().GetSlug() != "printer-jams" || hits[1].GetArticle().GetSlug() != "office-supplies" {
			t.Fatalf("hits: %v", hits)
		}
		var marked bool
		for _, p := range hits[1].GetSnippet() {
			marked = marked || (p.GetMatch() && strings.EqualFold(p.GetText(), "printer"))
		}
		if !marked || hits[0].GetArticle().GetBodyMarkdown() != "" {
			t.Fatalf("snippet of the body match does not mark printer, or a hit has its body: %v", hits)
		}
	})

	t.Run("edit with the version check", func(t *testing.T) {
		up, err := t1.UpdateArticle(ctx1, &desksidev1.UpdateArticleRequest{Article: bySlug("printer-jams"), Version: 1,
			Title: "Printer jams and toner", BodyMarkdown: "Open tray 2.", Category: "hardware", Tags: []string{"paper", "toner"}})
		if err != nil || up.GetArticle().GetVersion() != 2 || up.GetArticle().GetSlug() != "printer-jams" {
			t.Fatalf("update: %v %v", up, err)
		}
		auditHas(t, r, "t1", "kb.update", "printer-jams")
		_, err = t2.UpdateArticle(ctx2, &desksidev1.UpdateArticleRequest{Article: bySlug("printer-jams"), Version: 1,
			Title: "Stale", BodyMarkdown: "lost"})
		if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "deskside kb show printer-jams") {
			t.Fatalf("stale update: %v, want Aborted naming `deskside kb show`", err)
		}
		got, err := t2.GetArticle(ctx2, &desksidev1.GetArticleRequest{Article: &desksidev1.ArticleRef{Id: jam.GetId()}})
		if err != nil || got.GetArticle().GetTitle() != "Printer jams and toner" || got.GetArticle().GetBodyMarkdown() != "Open tray 2." {
			t.Fatalf("after the refused update: %v %v", got, err)
		}
		res, err := t1.SearchArticles(ctx1, &desksidev1.SearchArticlesRequest{Query: "toner"})
		if err != nil || len(res.GetHits()) != 1 {
			t.Fatalf("search after the edit: %v %v", res, err)
		}
	})

	t.Run("publish needs tier 2, delete admin", func(t *testing.T) {
		if _, err := t1.PublishArticle(ctx1, &desksidev1.PublishArticleRequest{Article: bySlug("printer-jams")}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("tier 1 publish: %v", err)
		}
		pub, err := t2.PublishArticle(ctx2, &desksidev1.PublishArticleRequest{Article: bySlug("printer-jams")})
		if err != nil || pub.GetArticle().GetState() != desksidev1.ArticleState_ARTICLE_STATE_PUBLISHED || pub.GetArticle().GetPublished() == nil {
			t.Fatalf("publish: %v %v", pub, err)
		}
		auditHas(t, r, "t2", "kb.publish", "printer-jams")
		res, err := t1.SearchArticles(ctx1, &desksidev1.SearchArticlesRequest{Query: "printer", PublishedOnly: true})
		if err != nil || len(res.GetHits()) != 1 || res.GetHits()[0].GetArticle().GetSlug() != "printer-jams" {
			t.Fatalf("published-only search: %v %v", res, err)
		}
		list, err := t1.ListArticles(ctx1, &desksidev1.ListArticlesRequest{State: desksidev1.ArticleState_ARTICLE_STATE_DRAFT})
		if err != nil || list.GetTotal() != 2 {
			t.Fatalf("drafts: %v %v", list, err)
		}
		if _, err := t2.DeleteArticle(ctx2, &desksidev1.DeleteArticleRequest{Article: bySlug("vpn-drops")}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("tier 2 delete: %v", err)
		}
		if _, err := admin.DeleteArticle(actx, &desksidev1.DeleteArticleRequest{Article: bySlug("vpn-drops")}); err != nil {
			t.Fatal(err)
		}
		auditHas(t, r, "admin", "kb.delete", "vpn-drops")
		_, err = t1.GetArticle(ctx1, &desksidev1.GetArticleRequest{Article: bySlug("vpn-drops")})
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "deskside kb list") {
			t.Fatalf("deleted: %v", err)
		}
	})

	t.Run("ticket links", func(t *testing.T) {
		l, err := t1.LinkArticleToTicket(ctx1, &desksidev1.LinkArticleToTicketRequest{Article: bySlug("printer-jams"), Ticket: "ds-7k3q"})
		if err != nil || !l.GetCreated() {
			t.Fatalf("link: %v %v", l, err)
		}
		for _, code := range []string{"DS-7K3Q", "Ds-7k3Q"} {
			res, err := t1.ListArticlesForTicket(ctx1, &desksidev1.ListArticlesForTicketRequest{Ticket: code})
			if err != nil || len(res.GetArticles()) != 1 || res.GetArticles()[0].GetSlug() != "printer-jams" {
				t.Fatalf("articles for %s: %v %v", code, res, err)
			}
		}
		got, err := t1.GetArticle(ctx1, &desksidev1.GetArticleRequest{Article: bySlug("printer-jams")})
		if err != nil || len(got.GetArticle().GetTickets()) != 1 || got.GetArticle().GetTickets()[0] != "DS-7K3Q" {
			t.Fatalf("tickets of the article: %v %v", got, err)
		}
		if _, err := t1.LinkArticleToTicket(ctx1, &desksidev1.LinkArticleToTicketRequest{Article: bySlug("printer-jams"), Ticket: "<b>"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("bad code: %v", err)
		}
	})

	t.Run("preview renders hostile Markdown inert", func(t *testing.T) {
		res, err := t1.RenderPreview(ctx1, &desksidev1.RenderPreviewRequest{BodyMarkdown: "# Hi\n\n<img src=x onerror=alert(1)>[a](javascript:alert(1))"})
		if err != nil {
			t.Fatal(err)
		}
		if h := res.GetBodyHtml(); !strings.Contains(h, "<h1>Hi</h1>") || strings.Contains(h, "onerror") || strings.Contains(h, "javascript") {
			t.Fatalf("preview: %q", h)
		}
	})

	t.Run("bad input names the fix", func(t *testing.T) {
		_, err := t1.CreateArticle(ctx1, &desksidev1.CreateArticleRequest{Title: " ", BodyMarkdown: "x"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("empty title: %v", err)
		}
		_, err = t1.GetArticle(ctx1, &desksidev1.GetArticleRequest{})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "deskside kb list") {
			t.Fatalf("no name: %v", err)
		}
	})
}
