package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deskside/deskside/relay/store"
)

const ticketCols = `t.id, t.code, t.requester_name, t.requester_email, t.device_id, t.subject, t.description, t.category,
	t.priority, t.status, t.tier, t.assignee, t.created_by, t.created_at, t.updated_at,
	t.first_response_at, t.resolved_at, t.closed_at, t.merged_into, t.snapshot IS NOT NULL, t.version`

func scanTicket(row pgx.Row, withSnapshot bool) (store.Ticket, error) {
	var (
		t                                         store.Ticket
		created, updated, first, resolved, closed int64
	)
	dest := []any{&t.ID, &t.Code, &t.RequesterName, &t.RequesterEmail, &t.DeviceID, &t.Subject, &t.Description, &t.Category,
		&t.Priority, &t.Status, &t.Tier, &t.Assignee, &t.CreatedBy, &created, &updated,
		&first, &resolved, &closed, &t.MergedInto, &t.HasSnapshot, &t.Version}
	if withSnapshot {
		dest = append(dest, &t.Snapshot)
	}
	if err := row.Scan(dest...); err != nil {
		return store.Ticket{}, err
	}
	t.CreatedAt, t.UpdatedAt = store.FromNanos(created), store.FromNanos(updated)
	t.FirstResponseAt, t.ResolvedAt, t.ClosedAt = store.FromNanos(first), store.FromNanos(resolved), store.FromNanos(closed)
	return t, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getTicket(ctx context.Context, q querier, where string, arg any) (store.Ticket, error) {
	t, err := scanTicket(q.QueryRow(ctx, `SELECT `+ticketCols+`, t.snapshot FROM tickets t WHERE `+where, arg), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	return t, err
}

// entriesText is the searchable text of entries' bodies.
func entriesText(entries []store.TicketEntry) string {
	var b strings.Builder
	for _, e := range entries {
		if w := store.SearchText(e.Body); w != "" {
			b.WriteString(" ")
			b.WriteString(w)
		}
	}
	return strings.TrimSpace(b.String())
}

func insertEntries(ctx context.Context, tx pgx.Tx, id int64, entries []store.TicketEntry) error {
	for _, e := range entries {
		if _, err := tx.Exec(ctx, `INSERT INTO ticket_entries (ticket_id, time, author, kind, body, from_value, to_value,
			link_kind, link_seq, link_action, link_target) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			id, store.Nanos(e.Time), e.Author, e.Kind, e.Body, e.From, e.To, e.LinkKind, e.LinkSeq, e.LinkAction, e.LinkTarget); err != nil {
			return err
		}
	}
	return nil
}

// snapshotArg stores an empty snapshot as NULL (none).
func snapshotArg(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateTicket implements store.Store.
func (s *Store) CreateTicket(ctx context.Context, t store.Ticket, entries []store.TicketEntry) (store.Ticket, error) {
	var out store.Ticket
	body := strings.TrimSpace(store.SearchText(t.Description) + " " + entriesText(entries))
	err := s.write(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO tickets (code, requester_name, requester_email, device_id, subject, description,
			category, priority, status, tier, assignee, created_by, created_at, updated_at, first_response_at, resolved_at, closed_at,
			merged_into, snapshot, version, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 1,
			setweight(to_tsvector('simple', $20), 'A') || setweight(to_tsvector('simple', $21), 'B')) RETURNING id`,
			t.Code, t.RequesterName, t.RequesterEmail, t.DeviceID, t.Subject, t.Description, t.Category, t.Priority, t.Status, t.Tier,
			t.Assignee, t.CreatedBy, store.Nanos(t.CreatedAt), store.Nanos(t.UpdatedAt), store.Nanos(t.FirstResponseAt),
			store.Nanos(t.ResolvedAt), store.Nanos(t.ClosedAt), t.MergedInto, snapshotArg(t.Snapshot),
			store.SearchText(t.Subject), body).Scan(&id)
		if isUnique(err) {
			return fmt.Errorf("postgres: create ticket %q: %w", t.Code, store.ErrExists)
		} else if err != nil {
			return fmt.Errorf("postgres: create ticket: %w", err)
		}
		if err := insertEntries(ctx, tx, id, entries); err != nil {
			return fmt.Errorf("postgres: create ticket: %w", err)
		}
		out, err = getTicket(ctx, tx, `t.id = $1`, id)
		return err
	})
	return out, err
}

// GetTicket implements store.Store.
func (s *Store) GetTicket(ctx context.Context, code string) (store.Ticket, error) {
	t, err := getTicket(ctx, s.pool, `t.code = $1`, code)
	if err != nil {
		return t, fmt.Errorf("postgres: ticket %q: %w", code, err)
	}
	return t, nil
}

// UpdateTicket implements store.Store.
func (s *Store) UpdateTicket(ctx context.Context, t store.Ticket, entries []store.TicketEntry) (store.Ticket, error) {
	var out store.Ticket
	text := entriesText(entries)
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE tickets SET requester_name = $1, requester_email = $2, device_id = $3, category = $4,
			priority = $5, status = $6, tier = $7, assignee = $8, updated_at = $9, first_response_at = $10, resolved_at = $11,
			closed_at = $12, merged_into = $13, version = version + 1,
			search = CASE WHEN $16 = '' THEN search ELSE search || setweight(to_tsvector('simple', $16), 'B') END
			WHERE id = $14 AND version = $15`,
			t.RequesterName, t.RequesterEmail, t.DeviceID, t.Category, t.Priority, t.Status, t.Tier, t.Assignee,
			store.Nanos(t.UpdatedAt), store.Nanos(t.FirstResponseAt), store.Nanos(t.ResolvedAt), store.Nanos(t.ClosedAt),
			t.MergedInto, t.ID, t.Version, text)
		if err != nil {
			return fmt.Errorf("postgres: update ticket: %w", err)
		}
		if tag.RowsAffected() == 0 {
			if _, err := getTicket(ctx, tx, `t.id = $1`, t.ID); err != nil {
				return fmt.Errorf("postgres: update ticket %d: %w", t.ID, err)
			}
			return fmt.Errorf("postgres: update ticket %q: %w", t.Code, store.ErrConflict)
		}
		if err := insertEntries(ctx, tx, t.ID, entries); err != nil {
			return fmt.Errorf("postgres: update ticket: %w", err)
		}
		out, err = getTicket(ctx, tx, `t.id = $1`, t.ID)
		return err
	})
	return out, err
}

// TicketEntries implements store.Store.
func (s *Store) TicketEntries(ctx context.Context, ticketID int64) ([]store.TicketEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, ticket_id, time, author, kind, body, from_value, to_value,
		link_kind, link_seq, link_action, link_target FROM ticket_entries WHERE ticket_id = $1 ORDER BY time, id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("postgres: ticket entries: %w", err)
	}
	defer rows.Close()
	var out []store.TicketEntry
	for rows.Next() {
		var (
			e  store.TicketEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &e.TicketID, &at, &e.Author, &e.Kind, &e.Body, &e.From, &e.To,
			&e.LinkKind, &e.LinkSeq, &e.LinkAction, &e.LinkTarget); err != nil {
			return nil, fmt.Errorf("postgres: ticket entries: %w", err)
		}
		e.Time = store.FromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: ticket entries: %w", err)
	}
	return out, nil
}

// ticketTSQuery is a tsquery for every term as a word prefix, in words of
// weight A (the subject) only when subject is set.
func ticketTSQuery(terms []string, subject bool) string {
	suffix := ":*"
	if subject {
		suffix = ":*A"
	}
	parts := make([]string, len(terms))
	for i, w := range terms {
		// Terms are letters and digits only (store.SearchTerms).
		parts[i] = w + suffix
	}
	return strings.Join(parts, " & ")
}

// ListTickets implements store.Store.
func (s *Store) ListTickets(ctx context.Context, f store.TicketFilter) ([]store.Ticket, int64, error) {
	if f.Offset < 0 {
		return nil, 0, fmt.Errorf("postgres: list tickets: negative offset %d", f.Offset)
	}
	var (
		p     params
		where []string
	)
	terms := store.SearchTerms(f.Search)
	var q string
	if len(terms) > 0 {
		q = p.add(ticketTSQuery(terms, false))
		where = append(where, `t.search @@ to_tsquery('simple', `+q+`)`)
	}
	if len(f.Statuses) > 0 {
		where = append(where, `t.status = ANY(`+p.add(f.Statuses)+`)`)
	}
	if len(f.Priorities) > 0 {
		where = append(where, `t.priority = ANY(`+p.add(f.Priorities)+`)`)
	}
	if f.Category != "" {
		where = append(where, `lower(t.category) = lower(`+p.add(f.Category)+`)`)
	}
	if f.DeviceID != "" {
		where = append(where, `t.device_id = `+p.add(f.DeviceID))
	}
	if f.Assignee != "" {
		where = append(where, `t.assignee = `+p.add(f.Assignee))
	}
	if f.Unassigned {
		where = append(where, `t.assignee = ''`)
	}
	if f.Tier != 0 {
		where = append(where, `t.tier = `+p.add(f.Tier))
	}
	if f.Groups != nil {
		where = append(where, `(t.device_id = '' OR NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = t.device_id AND d.group_name <> ALL(`+p.add(f.Groups)+`::text[])))`)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	nWhere := len(p)
	order := `t.priority DESC, t.created_at, t.id`
	if len(terms) > 0 {
		order = `t.search @@ to_tsquery('simple', ` + p.add(ticketTSQuery(terms, true)) + `) DESC, ts_rank(t.search, to_tsquery('simple', ` + q + `)) DESC, t.created_at DESC, t.id DESC`
	}
	limit, offset := p.add(limitArg(f.Limit)), p.add(int64(f.Offset))
	page := `SELECT ` + ticketCols + ` FROM tickets t` + cond + ` ORDER BY ` + order + ` LIMIT ` + limit + ` OFFSET ` + offset
	if len(terms) == 0 {
		// The page's ids first (sorted from an index holding the order's
		// columns), then only their rows, as in the SQLite store.
		page = `SELECT ` + ticketCols + ` FROM tickets t WHERE t.id IN (SELECT t.id FROM tickets t` + cond +
			` ORDER BY ` + order + ` LIMIT ` + limit + ` OFFSET ` + offset + `) ORDER BY ` + order
	}
	count, countArgs := `SELECT count(*) FROM tickets t`+cond, p[:nWhere]
	if f.CountLimit > 0 {
		// The count takes the conditions' parameters and its limit.
		countArgs = append(append(params{}, p[:nWhere]...), f.CountLimit)
		count = `SELECT count(*) FROM (SELECT 1 FROM tickets t` + cond + ` LIMIT $` + strconv.Itoa(len(countArgs)) + `) c`
	}
	var (
		out   []store.Ticket
		total int64
	)
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		out, total = nil, 0
		if err := tx.QueryRow(ctx, count, countArgs...).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, page, p...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTicket(rows, false)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		return ticketDevices(ctx, tx, out)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list tickets: %w", err)
	}
	return out, total, nil
}

// ticketDevices sets the DeviceHostname and DeviceGroup of ts with one
// query for the page's devices.
func ticketDevices(ctx context.Context, tx pgx.Tx, ts []store.Ticket) error {
	var ids []string
	seen := map[string]bool{}
	for _, t := range ts {
		if t.DeviceID != "" && !seen[t.DeviceID] {
			seen[t.DeviceID] = true
			ids = append(ids, t.DeviceID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id, hostname, group_name FROM devices WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	type dev struct{ host, group string }
	devs := make(map[string]dev, len(ids))
	for rows.Next() {
		var id string
		var d dev
		if err := rows.Scan(&id, &d.host, &d.group); err != nil {
			return err
		}
		devs[id] = d
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range ts {
		if d, ok := devs[ts[i].DeviceID]; ok {
			ts[i].DeviceHostname, ts[i].DeviceGroup = d.host, d.group
		}
	}
	return nil
}
