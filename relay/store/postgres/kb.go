package postgres

// The knowledge base (store.KBStore): articles in kb_articles with a
// generated, weighted tsvector under a GIN index, tags in kb_article_tags,
// ticket links in kb_ticket_links (migration 0012).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

// kbWeights are ts_rank's weights for D, C, B, A: body (C) 0.1, tags (B)
// 0.4, title (A) 1.0. ts_rank sums a term's occurrences with falling
// weights (at most about 1.6 times one occurrence), so one title match
// outranks any number of body matches of a single term.
const kbWeights = `'{0.01, 0.1, 0.4, 1.0}'::float4[]`

// kbColumns are the article columns without the body, in scanArticle order.
const kbColumns = `a.id, a.slug, a.title, a.category, a.tags, a.published, a.version, a.author, a.updated_by, a.created, a.updated, a.published_at`

// scanArticle reads kbColumns (and the body after them when body is set).
func scanArticle(r pgx.Row, body bool, extra ...any) (store.Article, error) {
	var (
		a                             store.Article
		tags                          string
		created, updated, publishedAt int64
	)
	dest := []any{&a.ID, &a.Slug, &a.Title, &a.Category, &tags, &a.Published, &a.Version, &a.Author, &a.UpdatedBy, &created, &updated, &publishedAt}
	if body {
		dest = append(dest, &a.Body)
	}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return store.Article{}, err
	}
	a.Tags = strings.Fields(tags)
	a.Created, a.Updated, a.PublishedAt = store.FromNanos(created), store.FromNanos(updated), store.FromNanos(publishedAt)
	return a, nil
}

func putTags(ctx context.Context, tx pgx.Tx, id int64, tags []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM kb_article_tags WHERE article_id = $1`, id); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO kb_article_tags (article_id, tag) SELECT $1, unnest($2::text[])`, id, tags)
	return err
}

// CreateArticle implements store.KBStore.
func (s *Store) CreateArticle(ctx context.Context, a store.Article) (store.Article, error) {
	a.Tags = store.NormTags(a.Tags)
	var id int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO kb_articles (slug, title, body, category, tags, published, version, author, updated_by, created, updated, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11) RETURNING id`,
			a.Slug, a.Title, a.Body, a.Category, strings.Join(a.Tags, " "), a.Published, a.Author, a.UpdatedBy,
			store.Nanos(a.Created), store.Nanos(a.Updated), store.Nanos(a.PublishedAt)).Scan(&id)
		if err != nil {
			return err
		}
		return putTags(ctx, tx, id, a.Tags)
	})
	if isUnique(err) {
		return store.Article{}, fmt.Errorf("postgres: create article %q: %w", a.Slug, store.ErrExists)
	} else if err != nil {
		return store.Article{}, fmt.Errorf("postgres: create article: %w", err)
	}
	return s.GetArticle(ctx, id)
}

// UpdateArticle implements store.KBStore. The version check and the
// update are one statement, so concurrent updaters on any relay cannot
// both succeed from the same version.
func (s *Store) UpdateArticle(ctx context.Context, a store.Article, version int64) (store.Article, error) {
	a.Tags = store.NormTags(a.Tags)
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE kb_articles SET title = $1, body = $2, category = $3, tags = $4, version = version + 1, updated_by = $5, updated = $6
			WHERE id = $7 AND version = $8`, a.Title, a.Body, a.Category, strings.Join(a.Tags, " "), a.UpdatedBy, store.Nanos(a.Updated), a.ID, version)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var cur int64
			err := tx.QueryRow(ctx, `SELECT version FROM kb_articles WHERE id = $1`, a.ID).Scan(&cur)
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			} else if err != nil {
				return err
			}
			return fmt.Errorf("%w (at version %d, not %d)", store.ErrVersionConflict, cur, version)
		}
		return putTags(ctx, tx, a.ID, a.Tags)
	})
	if err != nil {
		return store.Article{}, fmt.Errorf("postgres: update article %d: %w", a.ID, err)
	}
	return s.GetArticle(ctx, a.ID)
}

// SetArticleState implements store.KBStore.
func (s *Store) SetArticleState(ctx context.Context, id int64, published bool, by string, at time.Time) (store.Article, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE kb_articles SET published = $1, updated_by = $2, updated = $3,
		published_at = CASE WHEN $1 THEN $3 ELSE published_at END WHERE id = $4`, published, by, store.Nanos(at), id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Article{}, fmt.Errorf("postgres: set article %d state: %w", id, err)
	}
	return s.GetArticle(ctx, id)
}

// GetArticle implements store.KBStore.
func (s *Store) GetArticle(ctx context.Context, id int64) (store.Article, error) {
	return s.getArticle(ctx, `a.id = $1`, id)
}

// GetArticleBySlug implements store.KBStore.
func (s *Store) GetArticleBySlug(ctx context.Context, slug string) (store.Article, error) {
	return s.getArticle(ctx, `a.slug = $1`, slug)
}

func (s *Store) getArticle(ctx context.Context, where string, arg any) (store.Article, error) {
	a, err := scanArticle(s.pool.QueryRow(ctx, `SELECT `+kbColumns+`, a.body FROM kb_articles a WHERE `+where, arg), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Article{}, fmt.Errorf("postgres: article %v: %w", arg, store.ErrNotFound)
	} else if err != nil {
		return store.Article{}, fmt.Errorf("postgres: get article: %w", err)
	}
	return a, nil
}

// ListArticles implements store.KBStore.
func (s *Store) ListArticles(ctx context.Context, f store.ArticleFilter) ([]store.Article, int64, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, 0, fmt.Errorf("postgres: list articles: negative limit or offset")
	}
	var (
		conds []string
		args  []any
	)
	add := func(cond string, a any) {
		args = append(args, a)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.Category != "" {
		add(`a.category = $%d`, f.Category)
	}
	if f.Tag != "" {
		add(`EXISTS (SELECT 1 FROM kb_article_tags t WHERE t.article_id = a.id AND t.tag = $%d)`, f.Tag)
	}
	if f.Published != nil {
		add(`a.published = $%d`, *f.Published)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var (
		out   []store.Article
		total int64
	)
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		out = nil
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM kb_articles a`+where, args...).Scan(&total); err != nil {
			return err
		}
		n := len(args)
		rows, err := tx.Query(ctx, `SELECT `+kbColumns+` FROM kb_articles a`+where+
			fmt.Sprintf(` ORDER BY a.updated DESC, a.id DESC LIMIT $%d OFFSET $%d`, n+1, n+2), append(args, limitArg(f.Limit), f.Offset)...)
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
		return nil, 0, fmt.Errorf("postgres: list articles: %w", err)
	}
	return out, total, nil
}

// tsQuery is the to_tsquery text matching any of terms. Terms are letters
// and digits only (package relay/kb); anything else is dropped here too,
// so nothing reaches the tsquery parser as an operator.
func tsQuery(terms []string) string {
	var q []string
	for _, t := range terms {
		t = strings.Map(func(r rune) rune {
			if r == '\'' || r == '\\' || r == ':' || r == '&' || r == '|' || r == '!' || r == '(' || r == ')' || r == '<' || r == '>' || r == '*' || r <= ' ' {
				return -1
			}
			return r
		}, t)
		if t != "" {
			q = append(q, t)
		}
	}
	return strings.Join(q, " | ")
}

// Pruning of common words (see SearchArticles): in a knowledge base of
// at least pruneMinArticles articles, a search word found in more than half
// of them is left out of the ranking.
const pruneMinArticles = 2000

// kbCommonLexemes caches the lexemes found in more than half of a large
// knowledge base, read from the statistics ANALYZE keeps for the tsvector
// column (pg_stats.most_common_elems with their frequencies, fractions of
// rows; autovacuum keeps them current), and which search words stem to one
// of them. Reading the statistics costs milliseconds (the view and its
// array casts), so they are read at most once per kbCommonTTL.
type kbCommonLexemes struct {
	mu      sync.Mutex
	read    time.Time
	lexemes []string
	terms   map[string]bool // search word → common, for these lexemes
}

// kbCommonTTL is how long the common lexemes are reused.
const kbCommonTTL = time.Minute

// kbCommonTerms bounds how many search words kbCommonLexemes remembers.
const kbCommonTerms = 10_000

// commonLexemes returns the common lexemes, when they were read, and which
// of words were already looked up against them (a copy), reading the
// lexemes again when they are older than kbCommonTTL.
func (s *Store) commonLexemes(ctx context.Context, words []string) ([]string, time.Time, map[string]bool, error) {
	c := &s.kbCommon
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.read.IsZero() && time.Since(c.read) < kbCommonTTL && len(c.terms) <= kbCommonTerms {
		known := map[string]bool{}
		for _, w := range words {
			if v, ok := c.terms[w]; ok {
				known[w] = v
			}
		}
		return c.lexemes, c.read, known, nil
	}
	var lex []string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(e.lex ORDER BY e.lex), '{}')
		FROM pg_stats s, unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) e(lex, freq)
		WHERE s.schemaname = current_schema() AND s.tablename = 'kb_articles' AND s.attname = 'search'
			AND e.lex IS NOT NULL AND e.freq > 0.5
			AND (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'kb_articles'::regclass) >= $1`, pruneMinArticles).Scan(&lex)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	c.read, c.lexemes, c.terms = time.Now(), lex, map[string]bool{}
	return lex, c.read, map[string]bool{}, nil
}

// commonTerms reports which of terms more than half the articles contain
// (commonLexemes). Without statistics (before the first ANALYZE), or below
// pruneMinArticles articles, no word is common.
func (s *Store) commonTerms(ctx context.Context, terms []string) ([]bool, error) {
	out := make([]bool, len(terms))
	lex, read, known, err := s.commonLexemes(ctx, terms)
	if err != nil || len(lex) == 0 {
		return out, err
	}
	var ask []string
	for i, t := range terms {
		v, ok := known[t]
		if !ok {
			ask = append(ask, t)
		}
		out[i] = v
	}
	if len(ask) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT t.term, coalesce(bool_or(l = ANY($2::text[])), false)
		FROM unnest($1::text[]) t(term)
			LEFT JOIN LATERAL unnest(tsvector_to_array(to_tsvector('english', t.term))) l ON true
		GROUP BY t.term`, ask, lex)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var v bool
		if err := rows.Scan(&t, &v); err != nil {
			return nil, err
		}
		known[t] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, t := range terms {
		out[i] = known[t]
	}
	c := &s.kbCommon
	c.mu.Lock()
	if c.read.Equal(read) {
		for _, t := range ask {
			c.terms[t] = known[t]
		}
	}
	c.mu.Unlock()
	return out, nil
}

// headBound is a score no article without a search word in its title or
// tags reaches. ts_rank (calc_rank_or) adds, per query word w found in the
// article, (wjm + resj - wjm/(jm+1)²)/1.645 with resj = Σ weight(pos l)/(l+1)²
// over its positions and wjm the largest of those weights (at jm). With
// kbWeights a word only in the body (weight C, 0.1) adds less than
// 0.1·(π²/6)/1.645 = 0.1; a word in the title (A, 1.0, its first
// position) adds at least 1/1.645; the sum is divided by the number of query
// words. So an article whose words are all in the body scores below 0.1,
// and once the page's last title-or-tag hit scores 0.1 or more, no body-only
// article can take its place.
const headBound = 0.1

// SearchArticles implements store.KBStore. In a large knowledge base the
// words most articles contain are left out of the ranking (commonTerms):
// ts_rank has no idf, so such a word adds about the same to most scores,
// while scoring every article that contains it (most of them) is what makes
// a search slow. The rest are ranked by ts_rank with kbWeights over the
// tsvector (kept in the row: migration 0015), first among the articles with
// a search word in their title or tags (the head column's GIN index: few
// articles), and over every match only when those cannot fill the page
// with scores of at least headBound. ts_headline runs for the page of hits
// only and marks the ranked words. When every word is that common, the hits
// are the articles with a word in the title or tags, newest first
// (commonHits), as in the SQLite store, and the snippets mark every word.
func (s *Store) SearchArticles(ctx context.Context, q store.ArticleSearch) ([]store.ArticleHit, error) {
	tq := tsQuery(q.Terms)
	if tq == "" {
		return nil, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	common, err := s.commonTerms(ctx, q.Terms)
	if err != nil {
		return nil, fmt.Errorf("postgres: search articles: %w", err)
	}
	var rare []string
	for i, t := range q.Terms {
		if !common[i] {
			rare = append(rare, t)
		}
	}
	var (
		ids    []int64
		scores []float32
		rank   = tsQuery(rare)
	)
	if rank == "" {
		ids, err = s.commonHits(ctx, tq, q, limit)
		scores = make([]float32, len(ids))
	} else {
		ids, scores, err = s.rankHits(ctx, rank, q, limit, true)
		if err == nil && (len(ids) < limit || scores[len(ids)-1] < headBound) {
			ids, scores, err = s.rankHits(ctx, rank, q, limit, false)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: search articles: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// The snippet marks the words that were ranked (all of them when none
	// was).
	if rank != "" {
		tq = rank
	}
	rows, err := s.pool.Query(ctx, `WITH q AS (SELECT to_tsquery('english', $1) AS q)
		SELECT `+kbColumns+`, h.r,
			ts_headline('english', a.body, q.q, 'MaxFragments=1, MaxWords=24, MinWords=12, StartSel=' || $2 || ', StopSel=' || $3)
		FROM unnest($4::bigint[], $5::float4[]) WITH ORDINALITY h(id, r, i) JOIN kb_articles a ON a.id = h.id, q
		ORDER BY h.i`, tq, store.SnippetStart, store.SnippetEnd, ids, scores)
	if err != nil {
		return nil, fmt.Errorf("postgres: search articles: %w", err)
	}
	defer rows.Close()
	var out []store.ArticleHit
	for rows.Next() {
		var h store.ArticleHit
		var r float32
		h.Article, err = scanArticle(rows, false, &r, &h.Snippet)
		if err != nil {
			return nil, fmt.Errorf("postgres: search articles: %w", err)
		}
		h.Score = float64(r)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: search articles: %w", err)
	}
	return out, nil
}

// rankHits returns the ids and ts_rank scores of the best limit articles
// matching the tsquery text rank that q's filters allow, best first (then
// newest): among those with a word in the title or tags when head is set,
// else among all matches.
func (s *Store) rankHits(ctx context.Context, rank string, q store.ArticleSearch, limit int, head bool) ([]int64, []float32, error) {
	args := []any{rank, limit}
	conds := []string{`a.search @@ r.q`}
	if head {
		conds[0] = `a.head @@ r.q`
	}
	if q.PublishedOnly {
		conds = append(conds, `a.published`)
	}
	if q.Category != "" {
		args = append(args, q.Category)
		conds = append(conds, fmt.Sprintf(`a.category = $%d`, len(args)))
	}
	rows, err := s.pool.Query(ctx, `SELECT a.id, ts_rank(`+kbWeights+`, a.search, r.q) AS r
		FROM kb_articles a, to_tsquery('english', $1) r(q)
		WHERE `+strings.Join(conds, ` AND `)+`
		ORDER BY r DESC, a.updated DESC, a.id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		ids    []int64
		scores []float32
	)
	for rows.Next() {
		var id int64
		var r float32
		if err := rows.Scan(&id, &r); err != nil {
			return nil, nil, err
		}
		ids, scores = append(ids, id), append(scores, r)
	}
	return ids, scores, rows.Err()
}

// commonBatch is how many articles commonHits reads per query.
const commonBatch = 200

// commonHits returns the ids of the newest articles (by updated, then id)
// that q's filters allow and that have a word of the tsquery text tq in
// their title or tags, at most limit. It reads the articles newest first in
// batches through the updated (or category) index and tests each one's
// title and tag lexemes: the matches are a large part of the knowledge
// base, so a few batches find a page, where finding every match through the
// GIN index first would read them all.
func (s *Store) commonHits(ctx context.Context, tq string, q store.ArticleSearch, limit int) ([]int64, error) {
	args := []any{tq, commonBatch}
	var conds []string
	if q.PublishedOnly {
		conds = append(conds, `a.published`)
	}
	if q.Category != "" {
		args = append(args, q.Category)
		conds = append(conds, fmt.Sprintf(`a.category = $%d`, len(args)))
	}
	var (
		ids         []int64
		updated, id int64
	)
	for page := 0; ; page++ {
		if page == 1 {
			args = append(args, updated, id)
			conds = append(conds, fmt.Sprintf(`(a.updated, a.id) < ($%d, $%d)`, len(args)-1, len(args)))
		} else if page > 1 {
			args[len(args)-2], args[len(args)-1] = updated, id
		}
		where := ""
		if len(conds) > 0 {
			where = `WHERE ` + strings.Join(conds, ` AND `)
		}
		rows, err := s.pool.Query(ctx, `SELECT a.id, a.updated, a.head @@ to_tsquery('english', $1)
			FROM kb_articles a `+where+` ORDER BY a.updated DESC, a.id DESC LIMIT $2`, args...)
		if err != nil {
			return nil, err
		}
		n := 0
		for rows.Next() {
			var match bool
			if err := rows.Scan(&id, &updated, &match); err != nil {
				rows.Close()
				return nil, err
			}
			n++
			if match && len(ids) < limit {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(ids) >= limit || n < commonBatch {
			return ids, nil
		}
	}
}

// DeleteArticle implements store.KBStore.
func (s *Store) DeleteArticle(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM kb_articles WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete article %d: %w", id, err)
	}
	return nil
}

// LinkArticle implements store.KBStore.
func (s *Store) LinkArticle(ctx context.Context, id int64, ticket, by string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO kb_ticket_links (article_id, ticket, linked_by, linked) VALUES ($1, $2, $3, $4)
		ON CONFLICT (article_id, ticket) DO NOTHING`, id, ticket, by, store.Nanos(at))
	if isForeignKey(err) {
		err = store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("postgres: link article %d to %q: %w", id, ticket, err)
	}
	return tag.RowsAffected() > 0, nil
}

// UnlinkArticle implements store.KBStore.
func (s *Store) UnlinkArticle(ctx context.Context, id int64, ticket string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM kb_ticket_links WHERE article_id = $1 AND ticket = $2`, id, ticket)
	if err != nil {
		return false, fmt.Errorf("postgres: unlink article %d from %q: %w", id, ticket, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ArticleTickets implements store.KBStore.
func (s *Store) ArticleTickets(ctx context.Context, id int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT ticket FROM kb_ticket_links WHERE article_id = $1 ORDER BY linked DESC, ticket`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: article %d tickets: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: article %d tickets: %w", id, err)
	}
	return out, nil
}

// ArticlesForTicket implements store.KBStore.
func (s *Store) ArticlesForTicket(ctx context.Context, ticket string) ([]store.Article, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+kbColumns+` FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id
		WHERE l.ticket = $1 ORDER BY l.linked DESC, a.id DESC`, ticket)
	if err != nil {
		return nil, fmt.Errorf("postgres: articles for ticket %q: %w", ticket, err)
	}
	defer rows.Close()
	var out []store.Article
	for rows.Next() {
		a, err := scanArticle(rows, false)
		if err != nil {
			return nil, fmt.Errorf("postgres: articles for ticket %q: %w", ticket, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
