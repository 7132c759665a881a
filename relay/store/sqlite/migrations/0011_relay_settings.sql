-- Relay-wide settings that are not a device group's: the organisation's
-- signed revocation list (ADR 22), by name.
CREATE TABLE relay_settings (
	name    TEXT PRIMARY KEY,
	data    BLOB NOT NULL,
	updated INTEGER NOT NULL
);
