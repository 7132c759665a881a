package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/deskside/deskside/relay/store"
)

const ticketCols = `t.id, t.code, t.requester_name, t.requester_email, t.device_id, t.subject, t.description, t.category,
	t.priority, t.status, t.tier, t.assignee, t.created_by, t.created_at, t.updated_at,
	t.first_response_at, t.resolved_at, t.closed_at, t.merged_into, t.snapshot IS NOT NULL, t.version`

func scanTicket(sc scanner, withSnapshot bool) (store.Ticket, error) {
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
	if err := sc.Scan(dest...); err != nil {
		return store.Ticket{}, err
	}
	t.CreatedAt, t.UpdatedAt = store.FromNanos(created), store.FromNanos(updated)
	t.FirstResponseAt, t.ResolvedAt, t.ClosedAt = store.FromNanos(first), store.FromNanos(resolved), store.FromNanos(closed)
	return t, nil
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
	return b.String()
}

func insertEntries(ctx context.Context, tx *sql.Tx, id int64, entries []store.TicketEntry) error {
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_entries (ticket_id, time, author, kind, body, from_value, to_value,
			link_kind, link_seq, link_action, link_target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, store.Nanos(e.Time), e.Author, e.Kind, e.Body, e.From, e.To, e.LinkKind, e.LinkSeq, e.LinkAction, e.LinkTarget); err != nil {
			return err
		}
	}
	return nil
}

func getTicket(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, where string, arg any) (store.Ticket, error) {
	t, err := scanTicket(q.QueryRowContext(ctx, `SELECT `+ticketCols+`, t.snapshot FROM tickets t WHERE `+where, arg), true)
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	return t, err
}

// CreateTicket implements store.Store.
func (s *Store) CreateTicket(ctx context.Context, t store.Ticket, entries []store.TicketEntry) (store.Ticket, error) {
	var out store.Ticket
	err := s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO tickets (code, requester_name, requester_email, device_id, subject, description,
			category, priority, status, tier, assignee, created_by, created_at, updated_at, first_response_at, resolved_at, closed_at,
			merged_into, snapshot, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id`,
			t.Code, t.RequesterName, t.RequesterEmail, t.DeviceID, t.Subject, t.Description, t.Category, t.Priority, t.Status, t.Tier,
			t.Assignee, t.CreatedBy, store.Nanos(t.CreatedAt), store.Nanos(t.UpdatedAt), store.Nanos(t.FirstResponseAt),
			store.Nanos(t.ResolvedAt), store.Nanos(t.ClosedAt), t.MergedInto, snapshotArg(t.Snapshot)).Scan(&id)
		if isUnique(err) {
			return fmt.Errorf("sqlite: create ticket %q: %w", t.Code, store.ErrExists)
		} else if err != nil {
			return fmt.Errorf("sqlite: create ticket: %w", err)
		}
		if err := insertEntries(ctx, tx, id, entries); err != nil {
			return fmt.Errorf("sqlite: create ticket: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tickets_fts (rowid, subject, body) VALUES (?, ?, ?)`,
			id, store.SearchText(t.Subject), strings.TrimSpace(store.SearchText(t.Description)+entriesText(entries))); err != nil {
			return fmt.Errorf("sqlite: index ticket: %w", err)
		}
		out, err = getTicket(ctx, tx, `t.id = ?`, id)
		return err
	})
	return out, err
}

// snapshotArg stores an empty snapshot as NULL (none).
func snapshotArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// GetTicket implements store.Store.
func (s *Store) GetTicket(ctx context.Context, code string) (store.Ticket, error) {
	t, err := getTicket(ctx, s.r, `t.code = ?`, code)
	if err != nil {
		return t, fmt.Errorf("sqlite: ticket %q: %w", code, err)
	}
	return t, nil
}

// UpdateTicket implements store.Store.
func (s *Store) UpdateTicket(ctx context.Context, t store.Ticket, entries []store.TicketEntry) (store.Ticket, error) {
	var out store.Ticket
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tickets SET requester_name = ?, requester_email = ?, device_id = ?, category = ?,
			priority = ?, status = ?, tier = ?, assignee = ?, updated_at = ?, first_response_at = ?, resolved_at = ?, closed_at = ?,
			merged_into = ?, version = version + 1 WHERE id = ? AND version = ?`,
			t.RequesterName, t.RequesterEmail, t.DeviceID, t.Category, t.Priority, t.Status, t.Tier, t.Assignee,
			store.Nanos(t.UpdatedAt), store.Nanos(t.FirstResponseAt), store.Nanos(t.ResolvedAt), store.Nanos(t.ClosedAt),
			t.MergedInto, t.ID, t.Version)
		if err != nil {
			return fmt.Errorf("sqlite: update ticket: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := getTicket(ctx, tx, `t.id = ?`, t.ID); err != nil {
				return fmt.Errorf("sqlite: update ticket %d: %w", t.ID, err)
			}
			return fmt.Errorf("sqlite: update ticket %q: %w", t.Code, store.ErrConflict)
		}
		if err := insertEntries(ctx, tx, t.ID, entries); err != nil {
			return fmt.Errorf("sqlite: update ticket: %w", err)
		}
		if text := entriesText(entries); text != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE tickets_fts SET body = body || ? WHERE rowid = ?`, text, t.ID); err != nil {
				return fmt.Errorf("sqlite: index ticket: %w", err)
			}
		}
		out, err = getTicket(ctx, tx, `t.id = ?`, t.ID)
		return err
	})
	return out, err
}

// TicketEntries implements store.Store.
func (s *Store) TicketEntries(ctx context.Context, ticketID int64) ([]store.TicketEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, ticket_id, time, author, kind, body, from_value, to_value,
		link_kind, link_seq, link_action, link_target FROM ticket_entries WHERE ticket_id = ? ORDER BY time, id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ticket entries: %w", err)
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
			return nil, fmt.Errorf("sqlite: ticket entries: %w", err)
		}
		e.Time = store.FromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ticket entries: %w", err)
	}
	return out, nil
}

// ticketFTSQuery is an FTS5 query for every term as a word prefix, in column
// col ("" for any).
func ticketFTSQuery(terms []string, col string) string {
	var b strings.Builder
	if col != "" {
		b.WriteString(col + " : (")
	}
	for i, w := range terms {
		if i > 0 {
			b.WriteString(" ")
		}
		// Terms are letters and digits only (store.SearchTerms).
		b.WriteString(`"` + w + `"*`)
	}
	if col != "" {
		b.WriteString(")")
	}
	return b.String()
}

// inInts is "col IN (?, ?…)" with its arguments.
func inInts(col string, vs []int) (string, []any) {
	ph := make([]string, len(vs))
	args := make([]any, len(vs))
	for i, v := range vs {
		ph[i], args[i] = "?", v
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")", args
}

// ListTickets implements store.Store.
func (s *Store) ListTickets(ctx context.Context, f store.TicketFilter) ([]store.Ticket, int64, error) {
	if f.Offset < 0 {
		return nil, 0, fmt.Errorf("sqlite: list tickets: negative offset %d", f.Offset)
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	from := `tickets t`
	order := `t.priority DESC, t.created_at, t.id`
	var orderArgs []any
	terms := store.SearchTerms(f.Search)
	if len(terms) > 0 {
		from = `tickets_fts JOIN tickets t ON t.id = tickets_fts.rowid`
		add(`tickets_fts MATCH ?`, ticketFTSQuery(terms, ""))
		order = `t.id IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH ?) DESC, bm25(tickets_fts, 10.0, 1.0), t.created_at DESC, t.id DESC`
		orderArgs = []any{ticketFTSQuery(terms, "subject")}
	}
	if len(f.Statuses) > 0 {
		c, a := inInts("t.status", f.Statuses)
		add(c, a...)
	}
	if len(f.Priorities) > 0 {
		c, a := inInts("t.priority", f.Priorities)
		add(c, a...)
	}
	if f.Category != "" {
		add(`t.category = ?`, f.Category)
	}
	if f.DeviceID != "" {
		add(`t.device_id = ?`, f.DeviceID)
	}
	if f.Assignee != "" {
		add(`t.assignee = ?`, f.Assignee)
	}
	if f.Unassigned {
		add(`t.assignee = ''`)
	}
	if f.Tier != 0 {
		add(`t.tier = ?`, f.Tier)
	}
	if f.Groups != nil {
		c := `NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = t.device_id`
		var a []any
		if len(f.Groups) > 0 {
			c += ` AND d.grp NOT IN (?` + strings.Repeat(`, ?`, len(f.Groups)-1) + `)`
			for _, g := range f.Groups {
				a = append(a, g)
			}
		}
		add(`(t.device_id = '' OR `+c+`))`, a...)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var (
		out   []store.Ticket
		total int64
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		count := `SELECT count(*) FROM ` + from + cond
		countArgs := args
		if f.CountLimit > 0 {
			count = `SELECT count(*) FROM (SELECT 1 FROM ` + from + cond + ` LIMIT ?)`
			countArgs = append(append([]any{}, args...), f.CountLimit)
		}
		if err := tx.QueryRowContext(ctx, count, countArgs...).Scan(&total); err != nil {
			return err
		}
		q := `SELECT ` + ticketCols + ` FROM ` + from + cond + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
		if len(terms) == 0 {
			// The page's ids are sorted from an index alone (tickets_queue
			// and the others hold every column of the order), then only
			// their rows are read: not every matching row for the sort.
			q = `SELECT ` + ticketCols + ` FROM tickets t WHERE t.id IN (SELECT t.id FROM tickets t` + cond +
				` ORDER BY ` + order + ` LIMIT ? OFFSET ?) ORDER BY ` + order
		}
		rows, err := tx.QueryContext(ctx, q, append(append(append([]any{}, args...), orderArgs...), limitArg(f.Limit), f.Offset)...)
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
		return nil, 0, fmt.Errorf("sqlite: list tickets: %w", err)
	}
	return out, total, nil
}

// ticketDevices sets the DeviceHostname and DeviceGroup of ts with one
// query for the page's devices.
func ticketDevices(ctx context.Context, tx *sql.Tx, ts []store.Ticket) error {
	var (
		ph   []string
		args []any
		seen = map[string]bool{}
	)
	for _, t := range ts {
		if t.DeviceID != "" && !seen[t.DeviceID] {
			seen[t.DeviceID] = true
			ph, args = append(ph, "?"), append(args, t.DeviceID)
		}
	}
	if len(args) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, hostname, grp FROM devices WHERE id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	type dev struct{ host, group string }
	devs := make(map[string]dev, len(args))
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
