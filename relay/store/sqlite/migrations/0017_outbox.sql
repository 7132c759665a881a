-- Notifications waiting to leave the relay (relay/notify): one row per
-- mail and per webhook delivery, kept until sent or given up, so that a
-- restart loses nothing. Times are Unix nanoseconds (0: none).
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY,
	kind        TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	ticket      TEXT    NOT NULL DEFAULT '',
	event       TEXT    NOT NULL DEFAULT '',
	payload     BLOB    NOT NULL,
	status      TEXT    NOT NULL DEFAULT 'pending',
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	last_error  TEXT    NOT NULL DEFAULT '',
	last_status INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	lease_owner TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
);
-- The workers' claim: pending items by due time.
CREATE INDEX outbox_due ON outbox (next_at, id) WHERE status = 'pending';
-- The delivery log: newest first per kind.
CREATE INDEX outbox_kind_created ON outbox (kind, created_at DESC, id DESC);
