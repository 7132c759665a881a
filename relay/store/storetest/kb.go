package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// The knowledge base (store.KBStore). Besides what KBStore documents, the
// suite pins down that both backends rank alike: a single-word query puts
// articles matching it in the title first, then in a tag, then in the body
// only (however often); words are stemmed ("printers" finds "printer");
// an article matching more of the words ranks higher; edits and deletes
// reach the index at once.
var kbTests = []subtest{
	{"CreateAndGet", testArticleCreateGet},
	{"UpdateVersionCheck", testArticleUpdate},
	{"PublishState", testArticleState},
	{"ListFilters", testArticleList},
	{"SearchRanking", testArticleSearchRanking},
	{"SearchFilters", testArticleSearchFilters},
	{"SearchFollowsEdits", testArticleSearchEdits},
	{"TicketLinks", testArticleLinks},
}

func newArticle(slug, title, body string, tags ...string) store.Article {
	return store.Article{Slug: slug, Title: title, Body: body, Category: "general", Tags: tags,
		Author: "alice", UpdatedBy: "alice", Created: t0, Updated: t0}
}

func mustCreate(t *testing.T, s store.Store, a store.Article) store.Article {
	t.Helper()
	got, err := s.CreateArticle(context.Background(), a)
	ok(t, err, "CreateArticle %q", a.Slug)
	return got
}

func testArticleCreateGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := newArticle("printer-jams", "Printer jams", "# Clearing a jam\n\nOpen tray 2.", "printer", "hardware", "printer")
	a := mustCreate(t, s, in)
	if a.ID == 0 || a.Version != 1 || a.Published {
		t.Fatalf("created: id %d version %d published %v, want an id, version 1, draft", a.ID, a.Version, a.Published)
	}
	want := in
	want.ID, want.Version, want.Tags = a.ID, 1, []string{"hardware", "printer"}
	same(t, "created", a, want)
	got, err := s.GetArticle(ctx, a.ID)
	ok(t, err, "GetArticle")
	same(t, "by id", got, want)
	got, err = s.GetArticleBySlug(ctx, "printer-jams")
	ok(t, err, "GetArticleBySlug")
	same(t, "by slug", got, want)

	_, err = s.CreateArticle(ctx, newArticle("printer-jams", "Other", "x"))
	wantErr(t, err, store.ErrExists, "slug taken")
	_, err = s.GetArticle(ctx, a.ID+100)
	wantErr(t, err, store.ErrNotFound, "unknown id")
	_, err = s.GetArticleBySlug(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "unknown slug")
	b := mustCreate(t, s, newArticle("vpn", "VPN", "y"))
	if b.ID == a.ID {
		t.Fatalf("second article got the first's id %d", a.ID)
	}
	if len(b.Tags) != 0 {
		t.Fatalf("no tags read back as %q", b.Tags)
	}
}

func testArticleUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newArticle("vpn", "VPN", "old body", "network"))
	upd := a
	upd.Title, upd.Body, upd.Category, upd.Tags = "VPN drops", "new body", "network", []string{"vpn", "remote"}
	upd.UpdatedBy, upd.Updated = "bob", t0.Add(time.Hour)
	upd.Slug, upd.Author, upd.Published = "ignored", "ignored", true // not changed by an update
	got, err := s.UpdateArticle(ctx, upd, 1)
	ok(t, err, "UpdateArticle")
	want := a
	want.Title, want.Body, want.Category, want.Tags = "VPN drops", "new body", "network", []string{"remote", "vpn"}
	want.UpdatedBy, want.Updated, want.Version = "bob", t0.Add(time.Hour), 2
	same(t, "updated", got, want)

	_, err = s.UpdateArticle(ctx, upd, 1)
	wantErr(t, err, store.ErrVersionConflict, "update from a stale version")
	again, err := s.GetArticle(ctx, a.ID)
	ok(t, err, "GetArticle")
	same(t, "after refused update", again, want)
	upd.ID = a.ID + 100
	_, err = s.UpdateArticle(ctx, upd, 1)
	wantErr(t, err, store.ErrNotFound, "update of an unknown article")
}

func testArticleState(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newArticle("vpn", "VPN", "body"))
	p, err := s.SetArticleState(ctx, a.ID, true, "carol", t0.Add(time.Minute))
	ok(t, err, "publish")
	if !p.Published || !p.PublishedAt.Equal(t0.Add(time.Minute)) || p.UpdatedBy != "carol" || p.Version != 1 {
		t.Fatalf("published: %+v", p)
	}
	u, err := s.SetArticleState(ctx, a.ID, false, "dave", t0.Add(2*time.Minute))
	ok(t, err, "unpublish")
	if u.Published || !u.PublishedAt.Equal(t0.Add(time.Minute)) || u.UpdatedBy != "dave" || !u.Updated.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("unpublished (PublishedAt kept): %+v", u)
	}
	_, err = s.SetArticleState(ctx, a.ID+100, true, "carol", t0)
	wantErr(t, err, store.ErrNotFound, "publish of an unknown article")
	ok(t, s.DeleteArticle(ctx, a.ID), "DeleteArticle")
	_, err = s.GetArticle(ctx, a.ID)
	wantErr(t, err, store.ErrNotFound, "deleted article")
	wantErr(t, s.DeleteArticle(ctx, a.ID), store.ErrNotFound, "deleting twice")
}

func testArticleList(t *testing.T, s store.Store) {
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		a := newArticle(fmt.Sprintf("a%d", i), fmt.Sprintf("Article %d", i), "body", "common")
		a.Updated = t0.Add(time.Duration(i) * time.Minute)
		if i%2 == 0 {
			a.Category, a.Tags = "network", append(a.Tags, "even")
		}
		ids = append(ids, mustCreate(t, s, a).ID)
	}
	_, err := s.SetArticleState(ctx, ids[1], true, "x", t0.Add(10*time.Minute)) // now the newest
	ok(t, err, "publish")
	idsOf := func(as []store.Article) []int64 {
		var out []int64
		for _, a := range as {
			if a.Body != "" {
				t.Fatalf("listing returned the body of %q", a.Slug)
			}
			out = append(out, a.ID)
		}
		return out
	}
	tr, fa := true, false
	for _, c := range []struct {
		name  string
		f     store.ArticleFilter
		want  []int64
		total int64
	}{
		{"all", store.ArticleFilter{}, []int64{ids[1], ids[4], ids[3], ids[2], ids[0]}, 5},
		{"category", store.ArticleFilter{Category: "network"}, []int64{ids[4], ids[2], ids[0]}, 3},
		{"tag", store.ArticleFilter{Tag: "even"}, []int64{ids[4], ids[2], ids[0]}, 3},
		{"tag no match", store.ArticleFilter{Tag: "eve"}, nil, 0},
		{"published", store.ArticleFilter{Published: &tr}, []int64{ids[1]}, 1},
		{"drafts", store.ArticleFilter{Published: &fa, Limit: 2}, []int64{ids[4], ids[3]}, 4},
		{"page", store.ArticleFilter{Limit: 2, Offset: 2}, []int64{ids[3], ids[2]}, 5},
	} {
		got, total, err := s.ListArticles(ctx, c.f)
		ok(t, err, "ListArticles %s", c.name)
		if g := idsOf(got); !slices.Equal(g, c.want) || total != c.total {
			t.Errorf("%s: got %v (total %d), want %v (total %d)", c.name, g, total, c.want, c.total)
		}
	}
	if _, _, err := s.ListArticles(ctx, store.ArticleFilter{Offset: -1}); err == nil {
		t.Error("negative offset accepted")
	}
}

// hitSlugs are the slugs of hits, in order, failing on a hit with a body.
func hitSlugs(t *testing.T, hits []store.ArticleHit) []string {
	t.Helper()
	var out []string
	for i, h := range hits {
		if h.Article.Body != "" {
			t.Fatalf("hit %q has its body", h.Article.Slug)
		}
		if i > 0 && h.Score > hits[i-1].Score {
			t.Fatalf("hit %q scores %v above the one before it (%v)", h.Article.Slug, h.Score, hits[i-1].Score)
		}
		out = append(out, h.Article.Slug)
	}
	return out
}

func search(t *testing.T, s store.Store, q store.ArticleSearch) []store.ArticleHit {
	t.Helper()
	hits, err := s.SearchArticles(context.Background(), q)
	ok(t, err, "SearchArticles %q", q.Terms)
	return hits
}

func testArticleSearchRanking(t *testing.T, s store.Store) {
	// Created oldest first so that the body-only article is the most
	// recently updated: ranking, not recency, must put the title first.
	mk := func(slug, title, body string, min int, tags ...string) {
		a := newArticle(slug, title, body, tags...)
		a.Updated = t0.Add(time.Duration(min) * time.Minute)
		mustCreate(t, s, a)
	}
	mk("printer-jams", "Printer jams", "Open tray two and pull the sheet out gently.", 0)
	mk("toner", "Replacing toner", "Shake the cartridge before you insert it.", 1, "printer")
	mk("office", "Office supplies", strings.Repeat("The printer in room 4 needs paper. Every printer there is old; printers break. ", 5), 2)
	mk("vpn", "VPN drops", "Reconnect the client.", 3)
	mk("both", "Network basics", "A printer needs toner and a network cable.", 4)

	hits := search(t, s, store.ArticleSearch{Terms: []string{"printer"}})
	got := hitSlugs(t, hits)
	if len(got) != 4 || got[0] != "printer-jams" || got[1] != "toner" {
		t.Fatalf("search printer: got %v, want printer-jams (title), toner (tag), then the body matches", got)
	}
	if slices.Contains(got, "vpn") {
		t.Fatalf("search printer found vpn: %v", got)
	}
	// Stemming: the plural finds the same articles, title first.
	if got := hitSlugs(t, search(t, s, store.ArticleSearch{Terms: []string{"printers"}})); len(got) != 4 || got[0] != "printer-jams" {
		t.Fatalf("search printers: got %v, want printer-jams first of 4", got)
	}
	// Any word matches; more of them rank higher.
	got = hitSlugs(t, search(t, s, store.ArticleSearch{Terms: []string{"cable", "toner", "network"}}))
	if len(got) != 2 || got[0] != "both" {
		t.Fatalf("search cable toner network: got %v, want both (three words) then toner", got)
	}
	// The snippet comes from the body and marks the matched word.
	for _, h := range search(t, s, store.ArticleSearch{Terms: []string{"cartridge"}}) {
		if !strings.Contains(h.Snippet, store.SnippetStart+"cartridge"+store.SnippetEnd) {
			t.Fatalf("snippet %q does not mark cartridge", h.Snippet)
		}
	}
	if hits := search(t, s, store.ArticleSearch{Terms: []string{"zebra"}}); len(hits) != 0 {
		t.Fatalf("search zebra: %v", hitSlugs(t, hits))
	}
	if hits := search(t, s, store.ArticleSearch{}); len(hits) != 0 {
		t.Fatalf("no terms: %v", hitSlugs(t, hits))
	}
	if got := hitSlugs(t, search(t, s, store.ArticleSearch{Terms: []string{"printer"}, Limit: 1})); !slices.Equal(got, []string{"printer-jams"}) {
		t.Fatalf("search printer, limit 1: %v", got)
	}
}

func testArticleSearchFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newArticle("wifi-a", "Wifi at home", "wifi"))
	b := newArticle("wifi-b", "Wifi in the office", "wifi")
	b.Category = "office"
	mustCreate(t, s, b)
	_, err := s.SetArticleState(ctx, a.ID, true, "x", t0)
	ok(t, err, "publish")
	for _, c := range []struct {
		q    store.ArticleSearch
		want []string
	}{
		{store.ArticleSearch{Terms: []string{"wifi"}, PublishedOnly: true}, []string{"wifi-a"}},
		{store.ArticleSearch{Terms: []string{"wifi"}, Category: "office"}, []string{"wifi-b"}},
		{store.ArticleSearch{Terms: []string{"wifi"}, Category: "office", PublishedOnly: true}, nil},
	} {
		if got := hitSlugs(t, search(t, s, c.q)); !slices.Equal(got, c.want) {
			t.Errorf("search %+v: got %v, want %v", c.q, got, c.want)
		}
	}
}

func testArticleSearchEdits(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newArticle("mail", "Outlook crashes", "Start it in safe mode."))
	upd := a
	upd.Title, upd.Body, upd.Tags, upd.Updated = "Thunderbird crashes", "Remove the profile lock.", []string{"mail"}, t0.Add(time.Hour)
	_, err := s.UpdateArticle(ctx, upd, a.Version)
	ok(t, err, "UpdateArticle")
	if hits := search(t, s, store.ArticleSearch{Terms: []string{"outlook"}}); len(hits) != 0 {
		t.Fatalf("the old title still matches: %v", hitSlugs(t, hits))
	}
	if hits := search(t, s, store.ArticleSearch{Terms: []string{"safe"}}); len(hits) != 0 {
		t.Fatalf("the old body still matches: %v", hitSlugs(t, hits))
	}
	for _, w := range []string{"thunderbird", "lock", "mail"} {
		if got := hitSlugs(t, search(t, s, store.ArticleSearch{Terms: []string{w}})); !slices.Equal(got, []string{"mail"}) {
			t.Fatalf("search %s after the edit: %v", w, got)
		}
	}
	ok(t, s.DeleteArticle(ctx, a.ID), "DeleteArticle")
	if hits := search(t, s, store.ArticleSearch{Terms: []string{"thunderbird"}}); len(hits) != 0 {
		t.Fatalf("a deleted article matches: %v", hitSlugs(t, hits))
	}
}

func testArticleLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newArticle("a", "A", "x"))
	b := mustCreate(t, s, newArticle("b", "B", "y"))
	link := func(id int64, ticket string, min int, wantNew bool) {
		t.Helper()
		created, err := s.LinkArticle(ctx, id, ticket, "alice", t0.Add(time.Duration(min)*time.Minute))
		ok(t, err, "LinkArticle %d %s", id, ticket)
		if created != wantNew {
			t.Fatalf("LinkArticle %d %s: created %v, want %v", id, ticket, created, wantNew)
		}
	}
	link(a.ID, "DS-7K3Q", 0, true)
	link(b.ID, "DS-7K3Q", 1, true)
	link(a.ID, "DS-9XYZ", 2, true)
	link(a.ID, "DS-7K3Q", 3, false)
	_, err := s.LinkArticle(ctx, b.ID+100, "DS-7K3Q", "alice", t0)
	wantErr(t, err, store.ErrNotFound, "linking an unknown article")

	tickets, err := s.ArticleTickets(ctx, a.ID)
	ok(t, err, "ArticleTickets")
	if !slices.Equal(tickets, []string{"DS-9XYZ", "DS-7K3Q"}) {
		t.Fatalf("tickets of a: %v, want the latest link first", tickets)
	}
	arts, err := s.ArticlesForTicket(ctx, "DS-7K3Q")
	ok(t, err, "ArticlesForTicket")
	if len(arts) != 2 || arts[0].ID != b.ID || arts[1].ID != a.ID || arts[0].Body != "" {
		t.Fatalf("articles for DS-7K3Q: %+v, want b then a without bodies", arts)
	}
	removed, err := s.UnlinkArticle(ctx, b.ID, "DS-7K3Q")
	ok(t, err, "UnlinkArticle")
	if !removed {
		t.Fatal("UnlinkArticle: removed false for a link that existed")
	}
	if removed, _ := s.UnlinkArticle(ctx, b.ID, "DS-7K3Q"); removed {
		t.Fatal("UnlinkArticle twice: removed true")
	}
	ok(t, s.DeleteArticle(ctx, a.ID), "DeleteArticle")
	arts, err = s.ArticlesForTicket(ctx, "DS-7K3Q")
	ok(t, err, "ArticlesForTicket")
	if len(arts) != 0 {
		t.Fatalf("links of a deleted article remain: %+v", arts)
	}
}
