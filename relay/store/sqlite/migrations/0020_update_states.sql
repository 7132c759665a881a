-- Agent auto-update (relay/updates, docs/adr 33): where an update stands
-- on each device, one row per device so that relays reporting different
-- devices never overwrite each other. state holds values of
-- deskside.v1.UpdateState; updated_at is Unix nanoseconds. The states
-- that earlier versions kept in the relay setting "updates.states" are
-- moved here by relay/updates the first time it runs.
CREATE TABLE update_states (
	device_id  TEXT    NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	version    TEXT    NOT NULL,
	state      INTEGER NOT NULL,
	reason     TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX update_states_version ON update_states (version, state);
