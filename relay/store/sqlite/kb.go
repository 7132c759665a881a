package sqlite

// The knowledge base (store.KBStore): articles in kb_articles, tags in
// kb_article_tags, ticket links in kb_ticket_links, and the FTS5 table
// kb_fts over title, tags and body (migration 0015) and kb_fts_head over
// title and tags only (migration 0018), both kept in step by triggers.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// bm25 column weights of kb_fts (title, tags, body): a title match counts
// ten body matches, a tag match four.
const kbRank = `bm25(kb_fts, 10.0, 4.0, 1.0)`

// kbColumns are the article columns without the body, in scanArticle order.
const kbColumns = `a.id, a.slug, a.title, a.category, a.tags, a.published, a.version, a.author, a.updated_by, a.created, a.updated, a.published_at`

// scanArticle reads kbColumns (and the body after them when body is set).
func scanArticle(r scanner, body bool, extra ...any) (store.Article, error) {
	var (
		a                             store.Article
		tags                          string
		published                     int64
		created, updated, publishedAt int64
	)
	dest := []any{&a.ID, &a.Slug, &a.Title, &a.Category, &tags, &published, &a.Version, &a.Author, &a.UpdatedBy, &created, &updated, &publishedAt}
	if body {
		dest = append(dest, &a.Body)
	}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return store.Article{}, err
	}
	a.Tags = strings.Fields(tags)
	a.Published = published != 0
	a.Created, a.Updated, a.PublishedAt = store.FromNanos(created), store.FromNanos(updated), store.FromNanos(publishedAt)
	return a, nil
}

func putTags(ctx context.Context, tx *sql.Tx, id int64, tags []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM kb_article_tags WHERE article_id = ?`, id); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kb_article_tags (article_id, tag) VALUES (?, ?)`, id, t); err != nil {
			return err
		}
	}
	return nil
}

// CreateArticle implements store.KBStore.
func (s *Store) CreateArticle(ctx context.Context, a store.Article) (store.Article, error) {
	a.Tags = store.NormTags(a.Tags)
	a.Version = 1
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO kb_articles (slug, title, body, category, tags, published, version, author, updated_by, created, updated, published_at)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING id`,
			a.Slug, a.Title, a.Body, a.Category, strings.Join(a.Tags, " "), b2i(a.Published), a.Author, a.UpdatedBy,
			store.Nanos(a.Created), store.Nanos(a.Updated), store.Nanos(a.PublishedAt)).Scan(&a.ID)
		if err != nil {
			return err
		}
		return putTags(ctx, tx, a.ID, a.Tags)
	})
	if isUnique(err) {
		return store.Article{}, fmt.Errorf("sqlite: create article %q: %w", a.Slug, store.ErrExists)
	} else if err != nil {
		return store.Article{}, fmt.Errorf("sqlite: create article: %w", err)
	}
	s.kbWords.reset()
	return s.GetArticle(ctx, a.ID)
}

// UpdateArticle implements store.KBStore.
func (s *Store) UpdateArticle(ctx context.Context, a store.Article, version int64) (store.Article, error) {
	a.Tags = store.NormTags(a.Tags)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM kb_articles WHERE id = ?`, a.ID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if cur != version {
			return fmt.Errorf("%w (at version %d, not %d)", store.ErrVersionConflict, cur, version)
		}
		_, err = tx.ExecContext(ctx, `UPDATE kb_articles SET title = ?, body = ?, category = ?, tags = ?, version = version + 1, updated_by = ?, updated = ?
			WHERE id = ?`, a.Title, a.Body, a.Category, strings.Join(a.Tags, " "), a.UpdatedBy, store.Nanos(a.Updated), a.ID)
		if err != nil {
			return err
		}
		return putTags(ctx, tx, a.ID, a.Tags)
	})
	if err != nil {
		return store.Article{}, fmt.Errorf("sqlite: update article %d: %w", a.ID, err)
	}
	s.kbWords.reset()
	return s.GetArticle(ctx, a.ID)
}

// SetArticleState implements store.KBStore.
func (s *Store) SetArticleState(ctx context.Context, id int64, published bool, by string, at time.Time) (store.Article, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		q := `UPDATE kb_articles SET published = 0, updated_by = ?, updated = ? WHERE id = ?`
		args := []any{by, store.Nanos(at), id}
		if published {
			q = `UPDATE kb_articles SET published = 1, updated_by = ?, updated = ?, published_at = ? WHERE id = ?`
			args = []any{by, store.Nanos(at), store.Nanos(at), id}
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return store.Article{}, fmt.Errorf("sqlite: set article %d state: %w", id, err)
	}
	return s.GetArticle(ctx, id)
}

// GetArticle implements store.KBStore.
func (s *Store) GetArticle(ctx context.Context, id int64) (store.Article, error) {
	return s.getArticle(ctx, `a.id = ?`, id)
}

// GetArticleBySlug implements store.KBStore.
func (s *Store) GetArticleBySlug(ctx context.Context, slug string) (store.Article, error) {
	return s.getArticle(ctx, `a.slug = ?`, slug)
}

func (s *Store) getArticle(ctx context.Context, where string, arg any) (store.Article, error) {
	a, err := scanArticle(s.r.QueryRowContext(ctx, `SELECT `+kbColumns+`, a.body FROM kb_articles a WHERE `+where, arg), true)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Article{}, fmt.Errorf("sqlite: article %v: %w", arg, store.ErrNotFound)
	} else if err != nil {
		return store.Article{}, fmt.Errorf("sqlite: get article: %w", err)
	}
	return a, nil
}

// ListArticles implements store.KBStore.
func (s *Store) ListArticles(ctx context.Context, f store.ArticleFilter) ([]store.Article, int64, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, 0, fmt.Errorf("sqlite: list articles: negative limit or offset")
	}
	var (
		conds []string
		args  []any
	)
	if f.Category != "" {
		conds, args = append(conds, `a.category = ?`), append(args, f.Category)
	}
	if f.Tag != "" {
		conds, args = append(conds, `EXISTS (SELECT 1 FROM kb_article_tags t WHERE t.article_id = a.id AND t.tag = ?)`), append(args, f.Tag)
	}
	if f.Published != nil {
		conds, args = append(conds, `a.published = ?`), append(args, b2i(*f.Published))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	limit := int64(f.Limit)
	if limit == 0 {
		limit = -1
	}
	var (
		out   []store.Article
		total int64
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = nil
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kb_articles a`+where, args...).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+kbColumns+` FROM kb_articles a`+where+
			` ORDER BY a.updated DESC, a.id DESC LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanArticle(rows, false)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list articles: %w", err)
	}
	return out, total, nil
}

// ftsQuery is the FTS5 query matching any of terms: each a quoted string
// (terms are letters and digits only; quotes inside are doubled anyway).
func ftsQuery(terms []string) string {
	q := make([]string, len(terms))
	for i, t := range terms {
		q[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	return strings.Join(q, " OR ")
}

// sqlString is s as an SQL string literal. The search's statements are
// built for each search anyway (their shape follows the filters, the words
// and the number of hits), so its FTS5 queries are written into them.
func sqlString(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// Pruning of common words (see SearchArticles): in a knowledge base of
// at least pruneMinArticles articles, a search word found in more than half
// of them is dropped from the query.
const pruneMinArticles = 2000

// kbWordCounts caches the number of articles and, per search word, how
// many of them contain it (counted up to just over half): searchMatch's
// inputs. Counting a word most articles contain walks a long doclist, and
// such words are the ones searched again and again. The counts are dropped
// when this Store changes an article's text and after kbWordsTTL (in case
// another process wrote); a stale count only changes which words are left
// out, not what matches.
type kbWordCounts struct {
	mu       sync.Mutex
	gen      uint64 // changed by reset
	read     time.Time
	articles int64
	docs     map[string]int64
}

// kbWordsTTL is how long word counts are reused; kbWordsMax bounds how
// many are kept.
const (
	kbWordsTTL = time.Minute
	kbWordsMax = 10_000
)

func (c *kbWordCounts) reset() {
	c.mu.Lock()
	c.gen++
	c.read, c.articles, c.docs = time.Time{}, 0, nil
	c.mu.Unlock()
}

// searchMatch is the FTS5 query for terms: any of them, with the words
// found in more than half of a large knowledge base left out. bm25 gives
// such a word an idf of (nearly) zero, so leaving it out barely changes
// the order of the articles that match another word, while scoring every
// article that contains it (most of them) is what makes a search slow.
// When every word is that common, bm25 cannot tell the articles apart:
// common is true, and match is every word, for the caller to find the
// articles with one in the title or tags (kb_fts_head) and order them by
// recency without scoring.
func (s *Store) searchMatch(ctx context.Context, tx *sql.Tx, terms []string) (match string, common bool, err error) {
	c := &s.kbWords
	c.mu.Lock()
	if c.docs == nil || time.Since(c.read) > kbWordsTTL || len(c.docs) > kbWordsMax {
		c.read, c.articles, c.docs = time.Now(), -1, map[string]int64{}
	}
	n, gen := c.articles, c.gen
	df := make([]int64, len(terms))
	var missing []int
	for i, t := range terms {
		d, ok := c.docs[t]
		if !ok {
			missing = append(missing, i)
		}
		df[i] = d
	}
	c.mu.Unlock()

	if n < 0 {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kb_articles`).Scan(&n); err != nil {
			return "", false, err
		}
	}
	if n < pruneMinArticles {
		missing = nil
	}
	if len(missing) > 0 {
		// One statement counts the words not cached, each up to just
		// over half of the articles.
		counts := make([]string, len(missing))
		dest := make([]any, len(missing))
		for j, i := range missing {
			counts[j] = `(SELECT count(*) FROM (SELECT 1 FROM kb_fts WHERE kb_fts MATCH ` + sqlString(ftsQuery(terms[i:i+1])) +
				` LIMIT ` + strconv.FormatInt(n/2+1, 10) + `))`
			dest[j] = &df[i]
		}
		if err := tx.QueryRowContext(ctx, `SELECT `+strings.Join(counts, `, `)).Scan(dest...); err != nil {
			return "", false, err
		}
	}
	c.mu.Lock()
	if c.gen == gen && c.docs != nil {
		c.articles = n
		for _, i := range missing {
			c.docs[terms[i]] = df[i]
		}
	}
	c.mu.Unlock()

	if n < pruneMinArticles {
		return ftsQuery(terms), false, nil
	}
	var rare []string
	for i, t := range terms {
		if df[i] <= n/2 {
			rare = append(rare, t)
		}
	}
	if len(rare) == 0 {
		return ftsQuery(terms), true, nil
	}
	return ftsQuery(rare), false, nil
}

// SearchArticles implements store.KBStore in two statements. The first
// ranks: bm25 with kbRank's weights over the FTS5 index (in a large
// knowledge base without the words most articles contain: searchMatch),
// filtered and tie-broken through the covering index kb_articles_search
// (migration 0018), so that scoring thousands of matches reads no article
// row; only the page of hits leaves it. The second reads those hits'
// columns and snippets (FTS5 seeks each by rowid), so snippets are made
// for the returned page only.
func (s *Store) SearchArticles(ctx context.Context, q store.ArticleSearch) ([]store.ArticleHit, error) {
	if len(q.Terms) == 0 {
		return nil, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	var out []store.ArticleHit
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = nil
		match, common, err := s.searchMatch(ctx, tx, q.Terms)
		if err != nil {
			return err
		}
		var (
			conds []string
			args  []any
		)
		if q.PublishedOnly {
			conds = append(conds, `a.published = 1`)
		}
		if q.Category != "" {
			conds, args = append(conds, `a.category = ?`), append(args, q.Category)
		}
		query := `SELECT a.id, ` + kbRank + ` AS r FROM kb_fts JOIN kb_articles a INDEXED BY kb_articles_search ON a.id = kb_fts.rowid
			WHERE ` + strings.Join(append([]string{`kb_fts MATCH ` + sqlString(match)}, conds...), ` AND `) + `
			ORDER BY r, a.updated DESC, a.id DESC LIMIT ` + strconv.Itoa(limit)
		if common {
			// No scoring: the newest articles among the matches, read in
			// the order of the updated (or category) index; left to itself
			// the planner looks up every match and sorts them.
			index := `kb_articles_updated`
			if q.Category != "" {
				index = `kb_articles_category`
			}
			query = `SELECT a.id, 0 FROM kb_articles a INDEXED BY ` + index + `
				WHERE ` + strings.Join(append([]string{`a.id IN (SELECT rowid FROM kb_fts_head WHERE kb_fts_head MATCH ` + sqlString(match) + `)`}, conds...), ` AND `) + `
				ORDER BY a.updated DESC, a.id DESC LIMIT ` + strconv.Itoa(limit)
		}
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h store.ArticleHit
			var r float64
			if err := rows.Scan(&h.Article.ID, &r); err != nil {
				return err
			}
			h.Score = -r
			out = append(out, h)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(out) == 0 {
			return nil
		}
		// The snippet marks the words that were ranked (all of them when
		// none was). The ids are written into the statement too (numbers
		// only).
		at := make(map[int64]int, len(out))
		ids := make([]string, len(out))
		for i, h := range out {
			at[h.Article.ID] = i
			ids[i] = strconv.FormatInt(h.Article.ID, 10)
		}
		rows, err = tx.QueryContext(ctx, `SELECT `+kbColumns+`, snippet(kb_fts, 2, ?, ?, '…', 24)
			FROM kb_fts JOIN kb_articles a ON a.id = kb_fts.rowid
			WHERE kb_fts MATCH `+sqlString(match)+` AND kb_fts.rowid IN (`+strings.Join(ids, `, `)+`)`,
			store.SnippetStart, store.SnippetEnd)
		if err != nil {
			return err
		}
		defer rows.Close()
		found := 0
		for rows.Next() {
			var snippet string
			a, err := scanArticle(rows, false, &snippet)
			if err != nil {
				return err
			}
			i := at[a.ID]
			out[i].Article, out[i].Snippet = a, snippet
			found++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if found != len(out) {
			// Cannot happen in one read transaction; say so if it does.
			return fmt.Errorf("read %d of %d hits", found, len(out))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: search articles: %w", err)
	}
	return out, nil
}

// DeleteArticle implements store.KBStore.
func (s *Store) DeleteArticle(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM kb_articles WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete article %d: %w", id, err)
	}
	s.kbWords.reset()
	return nil
}

// LinkArticle implements store.KBStore.
func (s *Store) LinkArticle(ctx context.Context, id int64, ticket, by string, at time.Time) (bool, error) {
	var created bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO kb_ticket_links (article_id, ticket, linked_by, linked) VALUES (?, ?, ?, ?)
			ON CONFLICT (article_id, ticket) DO NOTHING`, id, ticket, by, store.Nanos(at))
		if isForeignKey(err) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		created = n > 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: link article %d to %q: %w", id, ticket, err)
	}
	return created, nil
}

// UnlinkArticle implements store.KBStore.
func (s *Store) UnlinkArticle(ctx context.Context, id int64, ticket string) (bool, error) {
	var removed bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM kb_ticket_links WHERE article_id = ? AND ticket = ?`, id, ticket)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		removed = n > 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: unlink article %d from %q: %w", id, ticket, err)
	}
	return removed, nil
}

// ArticleTickets implements store.KBStore.
func (s *Store) ArticleTickets(ctx context.Context, id int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT ticket FROM kb_ticket_links WHERE article_id = ? ORDER BY linked DESC, ticket`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: article %d tickets: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("sqlite: article %d tickets: %w", id, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ArticlesForTicket implements store.KBStore.
func (s *Store) ArticlesForTicket(ctx context.Context, ticket string) ([]store.Article, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+kbColumns+` FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id
		WHERE l.ticket = ? ORDER BY l.linked DESC, a.id DESC`, ticket)
	if err != nil {
		return nil, fmt.Errorf("sqlite: articles for ticket %q: %w", ticket, err)
	}
	defer rows.Close()
	var out []store.Article
	for rows.Next() {
		a, err := scanArticle(rows, false)
		if err != nil {
			return nil, fmt.Errorf("sqlite: articles for ticket %q: %w", ticket, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
