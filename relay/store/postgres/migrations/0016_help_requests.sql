-- Get help (relay/helprequests): which tickets a device's local user
-- filed, so that the user sees only those; files kept with tickets (a
-- screenshot, the triage report); and which articles solved a problem.
-- Times are Unix nanoseconds.
CREATE TABLE help_requests (
	ticket     text   PRIMARY KEY,
	device_id  text   NOT NULL,
	login      text   NOT NULL,
	created_at bigint NOT NULL
);
CREATE INDEX help_requests_user ON help_requests (device_id, login, created_at);

CREATE TABLE ticket_attachments (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ticket       text   NOT NULL,
	name         text   NOT NULL,
	content_type text   NOT NULL,
	data         bytea  NOT NULL,
	created_at   bigint NOT NULL
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket, id);

CREATE TABLE kb_article_helped (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	article_id bigint NOT NULL,
	device_id  text   NOT NULL,
	login      text   NOT NULL,
	at         bigint NOT NULL
);
CREATE INDEX kb_article_helped_article ON kb_article_helped (article_id);
