package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// TestSearchPrunesCommonWords covers the common-word pruning on a knowledge
// base large enough for it, once ANALYZE has run: a word in every article
// is left out when a rarer one is searched too, and alone it finds title
// and tag matches, newest first (as the SQLite store's test of the same
// name).
func TestSearchPrunesCommonWords(t *testing.T) {
	s, dsn := openFresh(t) // heavy: needs PostgreSQL
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		a := store.Article{Slug: fmt.Sprintf("a%d", i), Title: fmt.Sprintf("Article %d", i), Body: "common words everywhere",
			Author: "x", UpdatedBy: "x", Created: t0, Updated: t0.Add(time.Duration(i) * time.Second)}
		switch i {
		case 10, 20:
			a.Body += " rare"
		case 30:
			a.Title = "Common title"
		case 40:
			a.Title = "Also common"
		}
		if _, err := s.CreateArticle(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `ANALYZE kb_articles`); err != nil {
		t.Fatal(err)
	}
	slugs := func(terms ...string) []string {
		hits, err := s.SearchArticles(ctx, store.ArticleSearch{Terms: terms})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, h.Article.Slug)
		}
		return out
	}
	if got := slugs("common", "rare"); fmt.Sprint(got) != "[a20 a10]" {
		t.Errorf("common rare: %v, want the two rare articles (newest first at equal rank)", got)
	}
	if got := slugs("common"); fmt.Sprint(got) != "[a40 a30]" {
		t.Errorf("common alone: %v, want the title matches, newest first", got)
	}
	// The title and tag matches follow edits.
	for slug, title := range map[string]string{"a50": "Common again", "a40": "Also gone"} {
		a, err := s.GetArticleBySlug(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		a.Title, a.Updated = title, t0.Add(time.Hour)
		if _, err := s.UpdateArticle(ctx, a, a.Version); err != nil {
			t.Fatal(err)
		}
	}
	if got := slugs("common"); fmt.Sprint(got) != "[a50 a30]" {
		t.Errorf("common after retitling a50 and a40: %v, want [a50 a30]", got)
	}
}
