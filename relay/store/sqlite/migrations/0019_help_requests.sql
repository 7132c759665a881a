-- Get help (relay/helprequests): which tickets a device's local user
-- filed, so that the user sees only those; files kept with tickets (a
-- screenshot, the triage report); and which articles solved a problem.
-- Times are Unix nanoseconds.
CREATE TABLE help_requests (
	ticket     TEXT    PRIMARY KEY,
	device_id  TEXT    NOT NULL,
	login      TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX help_requests_user ON help_requests (device_id, login, created_at);

CREATE TABLE ticket_attachments (
	id           INTEGER PRIMARY KEY,
	ticket       TEXT    NOT NULL,
	name         TEXT    NOT NULL,
	content_type TEXT    NOT NULL,
	data         BLOB    NOT NULL,
	created_at   INTEGER NOT NULL
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket, id);

CREATE TABLE kb_article_helped (
	id         INTEGER PRIMARY KEY,
	article_id INTEGER NOT NULL,
	device_id  TEXT    NOT NULL,
	login      TEXT    NOT NULL,
	at         INTEGER NOT NULL
);
CREATE INDEX kb_article_helped_article ON kb_article_helped (article_id);
