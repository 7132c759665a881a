-- Relay-wide settings that are not a device group's: the organisation's
-- signed revocation list (ADR 22), by name.
CREATE TABLE relay_settings (
	name    text COLLATE "C" NOT NULL PRIMARY KEY,
	data    bytea  NOT NULL,
	updated bigint NOT NULL
);
