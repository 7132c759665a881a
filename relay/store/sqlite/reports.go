package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// reportWhere selects the tickets of a report period (store.ReportStore).
const reportWhere = `t.created_at < ? AND t.updated_at >= ?`

// ReportTickets implements store.ReportStore. Its three reads (tickets,
// timeline entries, article links) run at once on separate reader
// connections; a ticket filed meanwhile may lack from the first, and then
// its entries and links are dropped with it.
func (s *Store) ReportTickets(ctx context.Context, from, to time.Time) ([]store.ReportTicket, error) {
	f, u := store.Nanos(from), store.Nanos(to)
	var (
		wg               sync.WaitGroup
		out              []store.ReportTicket
		events           map[int64][]store.ReportEvent
		articles         map[int64][]store.ReportArticle
		errT, errE, errA error
	)
	wg.Add(3)
	go func() { defer wg.Done(); out, errT = s.reportRows(ctx, u, f) }()
	go func() { defer wg.Done(); events, errE = s.reportEvents(ctx, u, f) }()
	go func() { defer wg.Done(); articles, errA = s.reportArticles(ctx, u, f) }()
	wg.Wait()
	for _, err := range []error{errT, errE, errA} {
		if err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Events, out[i].Articles = events[out[i].ID], articles[out[i].ID]
	}
	return out, nil
}

func (s *Store) reportRows(ctx context.Context, u, f int64) ([]store.ReportTicket, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.id, t.code, t.category, t.priority, t.tier, t.assignee, t.created_at,
		t.first_response_at, COALESCE(d.model, ''), COALESCE(NULLIF(d.os_display, ''), d.os, '')
		FROM tickets t LEFT JOIN devices d ON d.id = t.device_id AND t.device_id <> ''
		WHERE `+reportWhere+` ORDER BY t.id`, u, f)
	if err != nil {
		return nil, fmt.Errorf("sqlite: report tickets: %w", err)
	}
	defer rows.Close()
	var out []store.ReportTicket
	for rows.Next() {
		var (
			t              store.ReportTicket
			created, first int64
		)
		if err := rows.Scan(&t.ID, &t.Code, &t.Category, &t.Priority, &t.Tier, &t.Assignee, &created, &first,
			&t.DeviceModel, &t.DeviceOS); err != nil {
			return nil, fmt.Errorf("sqlite: report tickets: %w", err)
		}
		t.CreatedAt, t.FirstResponseAt = store.FromNanos(created), store.FromNanos(first)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: report tickets: %w", err)
	}
	return out, nil
}

func (s *Store) reportEvents(ctx context.Context, u, f int64) (map[int64][]store.ReportEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.ticket_id, e.time, e.author, e.kind, e.from_value, e.to_value
		FROM ticket_entries e JOIN tickets t ON t.id = e.ticket_id
		WHERE `+reportWhere+` AND e.kind IN (?, ?, ?) ORDER BY e.ticket_id, e.time, e.id`,
		u, f, store.ReportKindStatus, store.ReportKindTier, store.ReportKindAssignee)
	if err != nil {
		return nil, fmt.Errorf("sqlite: report events: %w", err)
	}
	defer rows.Close()
	out := map[int64][]store.ReportEvent{}
	for rows.Next() {
		var (
			id, at int64
			e      store.ReportEvent
		)
		if err := rows.Scan(&id, &at, &e.Author, &e.Kind, &e.From, &e.To); err != nil {
			return nil, fmt.Errorf("sqlite: report events: %w", err)
		}
		e.Time = store.FromNanos(at)
		out[id] = append(out[id], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: report events: %w", err)
	}
	return out, nil
}

func (s *Store) reportArticles(ctx context.Context, u, f int64) (map[int64][]store.ReportArticle, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.id, a.id, a.title
		FROM kb_ticket_links l JOIN kb_articles a ON a.id = l.article_id JOIN tickets t ON t.code = UPPER(l.ticket)
		WHERE `+reportWhere+` ORDER BY t.id, a.id`, u, f)
	if err != nil {
		return nil, fmt.Errorf("sqlite: report articles: %w", err)
	}
	defer rows.Close()
	out := map[int64][]store.ReportArticle{}
	for rows.Next() {
		var (
			id int64
			a  store.ReportArticle
		)
		if err := rows.Scan(&id, &a.ID, &a.Title); err != nil {
			return nil, fmt.Errorf("sqlite: report articles: %w", err)
		}
		out[id] = append(out[id], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: report articles: %w", err)
	}
	return out, nil
}
