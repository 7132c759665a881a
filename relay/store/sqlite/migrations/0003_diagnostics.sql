-- Device groups (check thresholds per group), diagnostics reports and
-- commands queued for offline devices.
ALTER TABLE devices ADD COLUMN grp TEXT NOT NULL DEFAULT '';

CREATE TABLE group_settings (
	name    TEXT PRIMARY KEY,
	data    BLOB NOT NULL,
	updated INTEGER NOT NULL
);

CREATE TABLE check_reports (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	time       INTEGER NOT NULL,
	technician TEXT NOT NULL,
	overall    INTEGER NOT NULL,
	data       BLOB NOT NULL
);
CREATE INDEX check_reports_device_time ON check_reports (device_id, time DESC, id DESC);

CREATE TABLE queued_commands (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	technician TEXT NOT NULL,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	data       BLOB NOT NULL
);
CREATE INDEX queued_commands_device ON queued_commands (device_id, id);
