-- Help-desk tickets (package relay/tickets): the ticket, its timeline
-- and a full-text index over subject, description and every entry's body.
CREATE TABLE tickets (
	id                INTEGER PRIMARY KEY,
	code              TEXT    NOT NULL UNIQUE,
	requester_name    TEXT    NOT NULL DEFAULT '',
	requester_email   TEXT    NOT NULL DEFAULT '',
	device_id         TEXT    NOT NULL DEFAULT '',
	subject           TEXT    NOT NULL,
	description       TEXT    NOT NULL DEFAULT '',
	category          TEXT    NOT NULL DEFAULT '' COLLATE NOCASE,
	priority          INTEGER NOT NULL,
	status            INTEGER NOT NULL,
	tier              INTEGER NOT NULL,
	assignee          TEXT    NOT NULL DEFAULT '',
	created_by        TEXT    NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	first_response_at INTEGER NOT NULL DEFAULT 0,
	resolved_at       INTEGER NOT NULL DEFAULT 0,
	closed_at         INTEGER NOT NULL DEFAULT 0,
	merged_into       TEXT    NOT NULL DEFAULT '',
	snapshot          BLOB,
	version           INTEGER NOT NULL DEFAULT 1
) STRICT;

-- The queue order (most urgent, then oldest) within each filter.
CREATE INDEX tickets_queue ON tickets (status, priority DESC, created_at, id);
CREATE INDEX tickets_tier ON tickets (tier, status, priority DESC, created_at);
CREATE INDEX tickets_assignee ON tickets (assignee, status, priority DESC, created_at);
CREATE INDEX tickets_device ON tickets (device_id, created_at);
CREATE INDEX tickets_category ON tickets (category, status);

CREATE TABLE ticket_entries (
	id          INTEGER PRIMARY KEY,
	ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
	time        INTEGER NOT NULL,
	author      TEXT    NOT NULL DEFAULT '',
	kind        INTEGER NOT NULL,
	body        TEXT    NOT NULL DEFAULT '',
	from_value  TEXT    NOT NULL DEFAULT '',
	to_value    TEXT    NOT NULL DEFAULT '',
	link_kind   TEXT    NOT NULL DEFAULT '',
	link_seq    INTEGER NOT NULL DEFAULT 0,
	link_action TEXT    NOT NULL DEFAULT '',
	link_target TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX ticket_entries_ticket ON ticket_entries (ticket_id, time, id);

-- rowid is the ticket id; the columns hold the words of store.SearchText.
-- subject is ranked above body (bm25 weights in ListTickets).
CREATE VIRTUAL TABLE tickets_fts USING fts5 (subject, body, tokenize = 'unicode61 remove_diacritics 0');
