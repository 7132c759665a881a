package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/deskside/deskside/relay/store"
)

// PutHelpRequest implements store.HelpStore.
func (s *Store) PutHelpRequest(ctx context.Context, r store.HelpRequest, files []store.TicketAttachment) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO help_requests (ticket, device_id, login, created_at) VALUES (?, ?, ?, ?)`,
			r.Ticket, r.DeviceID, r.Login, store.Nanos(r.CreatedAt))
		if isUnique(err) {
			return store.ErrExists
		} else if err != nil {
			return err
		}
		for _, f := range files {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_attachments (ticket, name, content_type, data, created_at) VALUES (?, ?, ?, ?, ?)`,
				r.Ticket, f.Name, f.ContentType, f.Data, store.Nanos(r.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: help request %s: %w", r.Ticket, err)
	}
	return nil
}

// HelpRequest implements store.HelpStore.
func (s *Store) HelpRequest(ctx context.Context, ticket string) (store.HelpRequest, error) {
	r := store.HelpRequest{Ticket: ticket}
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT device_id, login, created_at FROM help_requests WHERE ticket = ?`, ticket).Scan(&r.DeviceID, &r.Login, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	} else if err != nil {
		return r, fmt.Errorf("sqlite: help request %s: %w", ticket, err)
	}
	r.CreatedAt = store.FromNanos(at)
	return r, nil
}

// HelpRequestsOf implements store.HelpStore.
func (s *Store) HelpRequestsOf(ctx context.Context, deviceID, login string, limit int) ([]store.HelpRequest, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT ticket, created_at FROM help_requests WHERE device_id = ? AND login = ?
		ORDER BY created_at DESC, ticket LIMIT ?`, deviceID, login, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: help requests of %s: %w", deviceID, err)
	}
	defer rows.Close()
	var out []store.HelpRequest
	for rows.Next() {
		r := store.HelpRequest{DeviceID: deviceID, Login: login}
		var at int64
		if err := rows.Scan(&r.Ticket, &at); err != nil {
			return nil, fmt.Errorf("sqlite: help requests of %s: %w", deviceID, err)
		}
		r.CreatedAt = store.FromNanos(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// TicketAttachments implements store.HelpStore.
func (s *Store) TicketAttachments(ctx context.Context, ticket string, withData bool) ([]store.TicketAttachment, error) {
	data := `x''`
	if withData {
		data = `data`
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, content_type, length(data), `+data+`, created_at
		FROM ticket_attachments WHERE ticket = ? ORDER BY id`, ticket)
	if err != nil {
		return nil, fmt.Errorf("sqlite: attachments of %s: %w", ticket, err)
	}
	defer rows.Close()
	var out []store.TicketAttachment
	for rows.Next() {
		a := store.TicketAttachment{Ticket: ticket}
		var at int64
		if err := rows.Scan(&a.ID, &a.Name, &a.ContentType, &a.Size, &a.Data, &at); err != nil {
			return nil, fmt.Errorf("sqlite: attachments of %s: %w", ticket, err)
		}
		if !withData {
			a.Data = nil
		}
		a.CreatedAt = store.FromNanos(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ArticleHelped implements store.HelpStore.
func (s *Store) ArticleHelped(ctx context.Context, id int64, deviceID, login string, at time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kb_article_helped (article_id, device_id, login, at) VALUES (?, ?, ?, ?)`,
			id, deviceID, login, store.Nanos(at)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM kb_article_helped WHERE article_id = ?`, id).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: article %d helped: %w", id, err)
	}
	return n, nil
}

// ArticleHelpedCount implements store.HelpStore.
func (s *Store) ArticleHelpedCount(ctx context.Context, id int64) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM kb_article_helped WHERE article_id = ?`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: article %d helped: %w", id, err)
	}
	return n, nil
}
