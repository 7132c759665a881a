// Package kb is the relay's knowledge base (docs/adr 23): articles in
// Markdown that technicians write and edit, with a category, tags, a
// draft or published state and links to the tickets they helped with;
// ranked full-text search; and rendering to HTML that is safe to show.
//
// The package holds the rules (field limits and cleaning, slugs, search
// words, ticket codes, rendering); store.KBStore keeps the articles and
// does the ranking; relay/server adapts both to KnowledgeService and
// decides who may call what. Rendering happens here, on the relay, so
// every client (console, CLI, the user's Get help page) gets the same
// sanitized HTML and none has to trust the Markdown.
//
// Ticket links are (article id, ticket code) pairs: the code is what the
// ticket domain shows people and the knowledge base does not depend on it
// (no foreign key, no lookup). Codes are stored upper case.
package kb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// Errors of Base's methods (wrapped with detail).
var (
	// ErrInvalid is a field that is empty, too long or malformed.
	ErrInvalid = errors.New("kb: invalid")
	// ErrNotFound is an article that does not exist.
	ErrNotFound = errors.New("kb: no such article")
	// ErrConflict is an update from a version that is no longer current.
	ErrConflict = errors.New("kb: the article changed since it was read")
)

// Base is the knowledge base over a store. It is safe for concurrent use.
type Base struct {
	st  store.KBStore
	now func() time.Time
}

// New returns a Base over st; now defaults to time.Now.
func New(st store.KBStore, now func() time.Time) *Base {
	if now == nil {
		now = time.Now
	}
	return &Base{st: st, now: now}
}

// wrap maps store errors to this package's.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case errors.Is(err, store.ErrVersionConflict):
		return fmt.Errorf("%w (%v)", ErrConflict, err)
	}
	return err
}

// Create stores c as a new draft by author. Its slug is Slug(title),
// with "-2", "-3"… appended while that is taken.
func (b *Base) Create(ctx context.Context, author string, c Content) (store.Article, error) {
	c, err := c.Clean()
	if err != nil {
		return store.Article{}, err
	}
	now := b.now()
	a := store.Article{Title: c.Title, Body: c.Body, Category: c.Category, Tags: c.Tags,
		Author: author, UpdatedBy: author, Created: now, Updated: now}
	base := Slug(c.Title)
	for i := 1; ; i++ {
		a.Slug = base
		if i > 1 {
			a.Slug = base + "-" + strconv.Itoa(i)
		}
		got, err := b.st.CreateArticle(ctx, a)
		if !errors.Is(err, store.ErrExists) {
			return got, wrap(err)
		}
		if i == 100 {
			return store.Article{}, fmt.Errorf("%w: 100 articles already have slugs like %q: choose another title", ErrInvalid, base)
		}
	}
}

// Update replaces article id's content, by technician by, if it is still
// at version (ErrConflict otherwise).
func (b *Base) Update(ctx context.Context, by string, id, version int64, c Content) (store.Article, error) {
	c, err := c.Clean()
	if err != nil {
		return store.Article{}, err
	}
	a := store.Article{ID: id, Title: c.Title, Body: c.Body, Category: c.Category, Tags: c.Tags, UpdatedBy: by, Updated: b.now()}
	got, err := b.st.UpdateArticle(ctx, a, version)
	return got, wrap(err)
}

// Get returns an article by id or, when id is 0, by slug.
func (b *Base) Get(ctx context.Context, id int64, slug string) (store.Article, error) {
	if id != 0 {
		a, err := b.st.GetArticle(ctx, id)
		return a, wrap(err)
	}
	if !ValidSlug(slug) {
		return store.Article{}, fmt.Errorf("%w: name an article by id or slug (lower-case letters, digits and '-'), not %q", ErrInvalid, slug)
	}
	a, err := b.st.GetArticleBySlug(ctx, slug)
	return a, wrap(err)
}

// SetPublished publishes or unpublishes article id.
func (b *Base) SetPublished(ctx context.Context, by string, id int64, published bool) (store.Article, error) {
	a, err := b.st.SetArticleState(ctx, id, published, by, b.now())
	return a, wrap(err)
}

// Delete deletes article id with its links.
func (b *Base) Delete(ctx context.Context, id int64) error {
	return wrap(b.st.DeleteArticle(ctx, id))
}

// List returns the articles f selects and how many there are.
func (b *Base) List(ctx context.Context, f store.ArticleFilter) ([]store.Article, int64, error) {
	if f.Tag != "" {
		t, err := CleanTag(f.Tag)
		if err != nil {
			return nil, 0, err
		}
		f.Tag = t
	}
	f.Category = cleanLine(f.Category)
	return b.st.ListArticles(ctx, f)
}

// Hit is a search result.
type Hit struct {
	Article store.Article
	Snippet []Part
	Score   float64
}

// Search returns up to limit articles matching any word of query, best
// first (store.ArticleSearch says how they rank). A query without words
// finds nothing.
func (b *Base) Search(ctx context.Context, query string, publishedOnly bool, category string, limit int) ([]Hit, error) {
	terms := SearchTerms(query)
	if len(terms) == 0 {
		return nil, nil
	}
	hits, err := b.st.SearchArticles(ctx, store.ArticleSearch{Terms: terms, PublishedOnly: publishedOnly, Category: cleanLine(category), Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = Hit{Article: h.Article, Snippet: SnippetParts(h.Snippet), Score: h.Score}
	}
	return out, nil
}

// Link links article id to a ticket code; created is false when the link
// existed.
func (b *Base) Link(ctx context.Context, by string, id int64, ticket string) (code string, created bool, err error) {
	code, err = TicketCode(ticket)
	if err != nil {
		return "", false, err
	}
	created, err = b.st.LinkArticle(ctx, id, code, by, b.now())
	return code, created, wrap(err)
}

// Unlink removes a link; removed is false when there was none.
func (b *Base) Unlink(ctx context.Context, id int64, ticket string) (code string, removed bool, err error) {
	code, err = TicketCode(ticket)
	if err != nil {
		return "", false, err
	}
	removed, err = b.st.UnlinkArticle(ctx, id, code)
	return code, removed, wrap(err)
}

// Tickets returns the codes of the tickets article id is linked to.
func (b *Base) Tickets(ctx context.Context, id int64) ([]string, error) {
	return b.st.ArticleTickets(ctx, id)
}

// ForTicket returns the articles linked to a ticket code.
func (b *Base) ForTicket(ctx context.Context, ticket string) ([]store.Article, error) {
	code, err := TicketCode(ticket)
	if err != nil {
		return nil, err
	}
	return b.st.ArticlesForTicket(ctx, code)
}
