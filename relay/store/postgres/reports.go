package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// reportWhere selects the tickets of a report period (store.ReportStore).
const reportWhere = `t.created_at < $1 AND t.updated_at >= $2`

// ReportTickets implements store.ReportStore.
func (s *Store) ReportTickets(ctx context.Context, from, to time.Time) ([]store.ReportTicket, error) {
	f, u := store.Nanos(from), store.Nanos(to)
	rows, err := s.pool.Query(ctx, `SELECT t.id, t.code, t.category, t.priority, t.tier, t.assignee, t.created_at,
		t.first_response_at, COALESCE(d.model, ''), COALESCE(NULLIF(d.os_display, ''), d.os, '')
		FROM tickets t LEFT JOIN devices d ON d.id = t.device_id AND t.device_id <> ''
		WHERE `+reportWhere+` ORDER BY t.id`, u, f)
	if err != nil {
		return nil, fmt.Errorf("postgres: report tickets: %w", err)
	}
	defer rows.Close()
	var out []store.ReportTicket
	byID := map[int64]int{}
	for rows.Next() {
		var (
			t              store.ReportTicket
			created, first int64
		)
		if err := rows.Scan(&t.ID, &t.Code, &t.Category, &t.Priority, &t.Tier, &t.Assignee, &created, &first,
			&t.DeviceModel, &t.DeviceOS); err != nil {
			return nil, fmt.Errorf("postgres: report tickets: %w", err)
		}
		t.CreatedAt, t.FirstResponseAt = store.FromNanos(created), store.FromNanos(first)
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: report tickets: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return nil, nil
	}
	erows, err := s.pool.Query(ctx, `SELECT e.ticket_id, e.time, e.author, e.kind, e.from_value, e.to_value
		FROM ticket_entries e JOIN tickets t ON t.id = e.ticket_id
		WHERE `+reportWhere+` AND e.kind IN ($3, $4, $5) ORDER BY e.ticket_id, e.time, e.id`,
		u, f, store.ReportKindStatus, store.ReportKindTier, store.ReportKindAssignee)
	if err != nil {
		return nil, fmt.Errorf("postgres: report events: %w", err)
	}
	defer erows.Close()
	for erows.Next() {
		var (
			id, at int64
			e      store.ReportEvent
		)
		if err := erows.Scan(&id, &at, &e.Author, &e.Kind, &e.From, &e.To); err != nil {
			return nil, fmt.Errorf("postgres: report events: %w", err)
		}
		e.Time = store.FromNanos(at)
		if i, ok := byID[id]; ok {
			out[i].Events = append(out[i].Events, e)
		}
	}
	if err := erows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: report events: %w", err)
	}
	erows.Close()
	arows, err := s.pool.Query(ctx, `SELECT t.id, a.id, a.title
		FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id JOIN tickets t ON t.code = UPPER(l.ticket)
		WHERE `+reportWhere+` ORDER BY t.id, a.id`, u, f)
	if err != nil {
		return nil, fmt.Errorf("postgres: report articles: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var (
			id int64
			a  store.ReportArticle
		)
		if err := arows.Scan(&id, &a.ID, &a.Title); err != nil {
			return nil, fmt.Errorf("postgres: report articles: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].Articles = append(out[i].Articles, a)
		}
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: report articles: %w", err)
	}
	return out, nil
}
