-- 0001_init: the relay's initial schema.
--
-- Conventions: every time is an INTEGER of Unix nanoseconds in UTC, with 0
-- meaning the zero time.Time. Every uint64 is stored bit-for-bit as a
-- signed INTEGER (SQLite has no unsigned type). Tables are STRICT so a
-- wrongly typed bind fails loudly instead of being stored as text.

CREATE TABLE devices (
	id               TEXT    NOT NULL PRIMARY KEY,
	hostname         TEXT    NOT NULL,
	agent_version    TEXT    NOT NULL DEFAULT '',
	os               TEXT    NOT NULL DEFAULT '',
	arch             TEXT    NOT NULL DEFAULT '',
	cert_serial      TEXT    NOT NULL DEFAULT '',
	first_seen       INTEGER NOT NULL DEFAULT 0,
	last_seen        INTEGER NOT NULL DEFAULT 0,
	online           INTEGER NOT NULL DEFAULT 0,
	revoked          INTEGER NOT NULL DEFAULT 0,
	revoked_at       INTEGER NOT NULL DEFAULT 0,
	model            TEXT    NOT NULL DEFAULT '',
	cpu_model        TEXT    NOT NULL DEFAULT '',
	memory_bytes     INTEGER NOT NULL DEFAULT 0,
	disk_total_bytes INTEGER NOT NULL DEFAULT 0,
	disk_free_bytes  INTEGER NOT NULL DEFAULT 0,
	user_name        TEXT    NOT NULL DEFAULT ''
) STRICT;

-- The fleet view's order and paging key: (hostname NOCASE, id).
CREATE INDEX devices_by_hostname ON devices (hostname COLLATE NOCASE, id);
-- MarkAllOffline touches only the online rows.
CREATE INDEX devices_online ON devices (online) WHERE online <> 0;

CREATE TABLE inventories (
	device_id    TEXT    NOT NULL PRIMARY KEY REFERENCES devices (id),
	collected_at INTEGER NOT NULL,
	received_at  INTEGER NOT NULL,
	data         BLOB
) STRICT;

CREATE TABLE inventory_changes (
	seq        INTEGER NOT NULL PRIMARY KEY,
	device_id  TEXT    NOT NULL REFERENCES devices (id),
	time       INTEGER NOT NULL,
	field      TEXT    NOT NULL,
	from_value TEXT    NOT NULL,
	to_value   TEXT    NOT NULL
) STRICT;

CREATE INDEX inventory_changes_by_device ON inventory_changes (device_id, time, seq);

-- Raw health samples. (device_id, id) is the agent's dedup key; ids are
-- opaque uint64s, so they are not usable as rowids.
CREATE TABLE health_raw (
	device_id       TEXT    NOT NULL REFERENCES devices (id),
	id              INTEGER NOT NULL,
	time            INTEGER NOT NULL,
	cpu_percent     REAL    NOT NULL,
	load1           REAL    NOT NULL,
	mem_used        INTEGER NOT NULL,
	mem_avail       INTEGER NOT NULL,
	swap_used       INTEGER NOT NULL,
	disk_used_pct   REAL    NOT NULL,
	net_rx_bps      REAL    NOT NULL,
	net_tx_bps      REAL    NOT NULL,
	detail          BLOB,
	UNIQUE (device_id, id)
) STRICT;

CREATE INDEX health_raw_by_time ON health_raw (device_id, time, id);
-- CompactHealth scans by time across all devices.
CREATE INDEX health_raw_time ON health_raw (time);

-- Downsampled health: per (device, width, bucket start) the number of raw
-- samples folded in and the sums of each metric, so a later compaction can
-- merge more samples into a bucket and the average stays exact.
CREATE TABLE health_buckets (
	device_id     TEXT    NOT NULL REFERENCES devices (id),
	width         INTEGER NOT NULL,
	start         INTEGER NOT NULL,
	n             INTEGER NOT NULL,
	cpu_percent   REAL    NOT NULL,
	load1         REAL    NOT NULL,
	mem_used      REAL    NOT NULL,
	mem_avail     REAL    NOT NULL,
	swap_used     REAL    NOT NULL,
	disk_used_pct REAL    NOT NULL,
	net_rx_bps    REAL    NOT NULL,
	net_tx_bps    REAL    NOT NULL,
	PRIMARY KEY (device_id, width, start)
) STRICT, WITHOUT ROWID;

CREATE INDEX health_buckets_by_time ON health_buckets (device_id, start);
CREATE INDEX health_buckets_start ON health_buckets (start);

CREATE TABLE enroll_tokens (
	id          TEXT    NOT NULL PRIMARY KEY,
	secret_hash BLOB    NOT NULL,
	expires_at  INTEGER NOT NULL,
	uses        INTEGER NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE technicians (
	name          TEXT    NOT NULL PRIMARY KEY,
	password_hash TEXT    NOT NULL,
	role          INTEGER NOT NULL,
	totp_secret   TEXT    NOT NULL,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	token_hash BLOB    NOT NULL PRIMARY KEY,
	technician TEXT    NOT NULL REFERENCES technicians (name),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_technician ON sessions (technician);

CREATE TABLE audit_log (
	seq       INTEGER NOT NULL PRIMARY KEY,
	time      INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	target    TEXT    NOT NULL,
	detail    TEXT    NOT NULL,
	prev_hash TEXT    NOT NULL,
	hash      TEXT    NOT NULL
) STRICT;
