package store

import (
	"context"
	"errors"
	"slices"
	"time"
)

// ErrVersionConflict is returned by UpdateArticle when the article is no
// longer at the version the caller read.
var ErrVersionConflict = errors.New("store: article changed since it was read")

// KBStore is the knowledge base (package relay/kb): articles, their tags,
// a full-text index over title, tags and body, and links to tickets.
//
// Ticket links are (article id, ticket code) pairs without a foreign key to
// any ticket table: the code is what a ticket is known by, and the
// knowledge base does not depend on the ticket store. Deleting an article
// deletes its links and tags.
type KBStore interface {
	// CreateArticle stores a new article, ignoring a.ID and a.Version, and
	// returns it with its id and Version 1. ErrExists if the slug is taken.
	CreateArticle(ctx context.Context, a Article) (Article, error)
	// UpdateArticle replaces the title, body, category and tags of article
	// a.ID and sets UpdatedBy and Updated from a, if its version is still
	// version; the version goes up by one. The slug, state, author and
	// creation time stay. ErrNotFound if there is no such article,
	// ErrVersionConflict if its version is not version.
	UpdateArticle(ctx context.Context, a Article, version int64) (Article, error)
	// SetArticleState publishes (published true) or unpublishes an
	// article, recording by and at as UpdatedBy and Updated, and at as
	// PublishedAt when publishing. The version does not change (the
	// content did not). ErrNotFound if there is no such article.
	SetArticleState(ctx context.Context, id int64, published bool, by string, at time.Time) (Article, error)
	// GetArticle returns one article or ErrNotFound.
	GetArticle(ctx context.Context, id int64) (Article, error)
	// GetArticleBySlug returns one article or ErrNotFound.
	GetArticleBySlug(ctx context.Context, slug string) (Article, error)
	// ListArticles returns the articles f selects, without Body, most
	// recently updated first (then by id, descending), and how many match
	// f ignoring paging.
	ListArticles(ctx context.Context, f ArticleFilter) ([]Article, int64, error)
	// SearchArticles returns up to q.Limit articles (without Body)
	// matching any of q.Terms, best first (see ArticleSearch).
	SearchArticles(ctx context.Context, q ArticleSearch) ([]ArticleHit, error)
	// DeleteArticle deletes an article with its tags and ticket links;
	// ErrNotFound if there is no such article.
	DeleteArticle(ctx context.Context, id int64) error
	// LinkArticle records that article id helped with ticket (a code, as
	// given). Linking twice is not an error; created says whether the link
	// is new. ErrNotFound if there is no such article.
	LinkArticle(ctx context.Context, id int64, ticket, by string, at time.Time) (created bool, err error)
	// UnlinkArticle removes a link and says whether there was one.
	UnlinkArticle(ctx context.Context, id int64, ticket string) (removed bool, err error)
	// ArticleTickets returns the ticket codes article id is linked to,
	// most recently linked first.
	ArticleTickets(ctx context.Context, id int64) ([]string, error)
	// ArticlesForTicket returns the articles (without Body) linked to
	// ticket, most recently linked first.
	ArticlesForTicket(ctx context.Context, ticket string) ([]Article, error)
}

// Article is one knowledge-base article. Body is Markdown; rendering it
// happens above the store (package relay/kb).
type Article struct {
	ID       int64
	Slug     string
	Title    string
	Body     string
	Category string
	// Tags are stored and returned sorted, without duplicates.
	Tags        []string
	Published   bool
	Version     int64
	Author      string
	UpdatedBy   string
	Created     time.Time
	Updated     time.Time
	PublishedAt time.Time // zero until first published
}

// ArticleFilter selects articles. Zero values match everything.
type ArticleFilter struct {
	Category string // exact
	Tag      string // exact, one of the article's tags
	// Published, when set, keeps only published (true) or draft (false)
	// articles.
	Published *bool
	// Limit caps the result (0 means no limit); Offset skips that many.
	Limit  int
	Offset int
}

// ArticleSearch is a full-text query.
//
// Terms are words made only of letters and digits (package relay/kb
// splits a query into them); an article matches when its title, tags or
// body contains any of them after stemming (English). Backends rank title
// matches far above tag matches, and tag matches above body matches, so
// that an article whose title matches a single-word query ranks before
// every article that matches it only in the body; more terms matched rank
// higher. Ties go to the most recently updated article, then the higher
// id.
type ArticleSearch struct {
	Terms         []string
	PublishedOnly bool
	Category      string // exact; "" for all
	Limit         int    // 0 means 20
}

// ArticleHit is one search result: the article without its body, the
// best-matching passage of the body with each matched word between
// SnippetStart and SnippetEnd, and the backend's score (higher is better,
// comparable only within one result).
type ArticleHit struct {
	Article Article
	Snippet string
	Score   float64
}

// Snippet markers: control characters a stored body never contains (relay/kb
// removes them), so they can only come from the backend's highlighter.
const (
	SnippetStart = "\x02"
	SnippetEnd   = "\x03"
)

// NormTags returns tags sorted and without duplicates or empty strings,
// the form backends store.
func NormTags(tags []string) []string {
	out := slices.DeleteFunc(slices.Clone(tags), func(t string) bool { return t == "" })
	slices.Sort(out)
	return slices.Compact(out)
}
