package postgres

// The knowledge base (store.KBStore): articles in kb_articles with a
// generated, weighted tsvector under a GIN index, tags in kb_article_tags,
// ticket links in kb_ticket_links (migration 0012).

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// SearchArticles implements store.KBStore: ts_rank with kbWeights over
// the GIN-indexed tsvector, then ts_headline of the hits' bodies only.
func (s *Store) SearchArticles(ctx context.Context, q store.ArticleSearch) ([]store.ArticleHit, error) {
	tq := tsQuery(q.Terms)
	if tq == "" {
		return nil, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	args := []any{tq, limit, store.SnippetStart, store.SnippetEnd}
	conds := []string{`a.search @@ q.q`}
	if q.PublishedOnly {
		conds = append(conds, `a.published`)
	}
	if q.Category != "" {
		args = append(args, q.Category)
		conds = append(conds, fmt.Sprintf(`a.category = $%d`, len(args)))
	}
	rows, err := s.pool.Query(ctx, `WITH q AS (SELECT to_tsquery('english', $1) AS q),
		hits AS (
			SELECT a.id, ts_rank(`+kbWeights+`, a.search, q.q) AS r
			FROM kb_articles a, q
			WHERE `+strings.Join(conds, ` AND `)+`
			ORDER BY r DESC, a.updated DESC, a.id DESC LIMIT $2)
		SELECT `+kbColumns+`, h.r,
			ts_headline('english', a.body, q.q, 'MaxFragments=1, MaxWords=24, MinWords=12, StartSel=' || $3 || ', StopSel=' || $4)
		FROM hits h JOIN kb_articles a ON a.id = h.id, q
		ORDER BY h.r DESC, a.updated DESC, a.id DESC`, args...)
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
