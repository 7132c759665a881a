-- Help-desk tickets (package relay/tickets): the ticket, its timeline
-- and a full-text index over subject (weight A), description and every
-- entry's body (weight B), built from store.SearchText with the 'simple'
-- configuration so both backends find the same words.
CREATE TABLE tickets (
	id                bigserial PRIMARY KEY,
	code              text COLLATE "C" NOT NULL UNIQUE,
	requester_name    text COLLATE "C" NOT NULL DEFAULT '',
	requester_email   text COLLATE "C" NOT NULL DEFAULT '',
	device_id         text COLLATE "C" NOT NULL DEFAULT '',
	subject           text COLLATE "C" NOT NULL,
	description       text COLLATE "C" NOT NULL DEFAULT '',
	category          text COLLATE "C" NOT NULL DEFAULT '',
	priority          integer NOT NULL,
	status            integer NOT NULL,
	tier              integer NOT NULL,
	assignee          text COLLATE "C" NOT NULL DEFAULT '',
	created_by        text COLLATE "C" NOT NULL DEFAULT '',
	created_at        bigint  NOT NULL,
	updated_at        bigint  NOT NULL,
	first_response_at bigint  NOT NULL DEFAULT 0,
	resolved_at       bigint  NOT NULL DEFAULT 0,
	closed_at         bigint  NOT NULL DEFAULT 0,
	merged_into       text COLLATE "C" NOT NULL DEFAULT '',
	snapshot          bytea,
	version           bigint  NOT NULL DEFAULT 1,
	search            tsvector NOT NULL DEFAULT ''::tsvector
);

CREATE INDEX tickets_queue ON tickets (status, priority DESC, created_at, id);
CREATE INDEX tickets_tier ON tickets (tier, status, priority DESC, created_at);
CREATE INDEX tickets_assignee ON tickets (assignee, status, priority DESC, created_at);
CREATE INDEX tickets_device ON tickets (device_id, created_at);
CREATE INDEX tickets_category ON tickets (lower(category), status);
CREATE INDEX tickets_search ON tickets USING gin (search);

CREATE TABLE ticket_entries (
	id          bigserial PRIMARY KEY,
	ticket_id   bigint  NOT NULL REFERENCES tickets (id),
	time        bigint  NOT NULL,
	author      text COLLATE "C" NOT NULL DEFAULT '',
	kind        integer NOT NULL,
	body        text COLLATE "C" NOT NULL DEFAULT '',
	from_value  text COLLATE "C" NOT NULL DEFAULT '',
	to_value    text COLLATE "C" NOT NULL DEFAULT '',
	link_kind   text COLLATE "C" NOT NULL DEFAULT '',
	link_seq    bigint  NOT NULL DEFAULT 0,
	link_action text COLLATE "C" NOT NULL DEFAULT '',
	link_target text COLLATE "C" NOT NULL DEFAULT ''
);

CREATE INDEX ticket_entries_ticket ON ticket_entries (ticket_id, time, id);
