-- Notifications waiting to leave the relay (relay/notify): one row per
-- mail and per webhook delivery, kept until sent or given up, so that a
-- restart loses nothing. Relays sharing the database claim rows with
-- SELECT ... FOR UPDATE SKIP LOCKED and a lease. Times are Unix
-- nanoseconds (0: none).
CREATE TABLE outbox (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind        text   NOT NULL,
	target      text   NOT NULL,
	ticket      text   NOT NULL DEFAULT '',
	event       text   NOT NULL DEFAULT '',
	payload     bytea  NOT NULL,
	status      text   NOT NULL DEFAULT 'pending',
	attempts    integer NOT NULL DEFAULT 0,
	next_at     bigint NOT NULL,
	last_error  text   NOT NULL DEFAULT '',
	last_status integer NOT NULL DEFAULT 0,
	created_at  bigint NOT NULL,
	updated_at  bigint NOT NULL,
	lease_owner text   NOT NULL DEFAULT '',
	lease_until bigint NOT NULL DEFAULT 0
);
-- The workers' claim: pending items by due time.
CREATE INDEX outbox_due ON outbox (next_at, id) WHERE status = 'pending';
-- The delivery log: newest first per kind.
CREATE INDEX outbox_kind_created ON outbox (kind, created_at DESC, id DESC);
