-- 0001_init: the relay's schema on PostgreSQL.
--
-- Conventions (see the package documentation for why):
--
--   * Every time is a bigint of Unix nanoseconds in UTC, 0 meaning the zero
--     time.Time: timestamptz keeps only microseconds, and the audit hash
--     covers the nanoseconds. to_timestamp(col / 1e9) reads one by hand.
--   * Every uint64 is the domain uint64: numeric(20,0) limited to
--     0..2^64-1. It compares, sorts and sums as the unsigned number it is,
--     so bounds and orderings need no tricks.
--   * Every text column is COLLATE "C": ids break ties by byte order, and
--     lower() and ILIKE fold ASCII letters only, whatever the database's
--     default collation. The fleet view's case-insensitive orderings are
--     lower(col), with an index on each.
--   * text cannot hold NUL: free-form strings that are never searched
--     (audit events, inventory changes) are bytea holding the string's
--     bytes.
--   * Tables are created in the first schema of search_path.

CREATE DOMAIN uint64 AS numeric(20, 0)
	CHECK (VALUE BETWEEN 0 AND 18446744073709551615);

CREATE TABLE devices (
	id               text COLLATE "C" NOT NULL PRIMARY KEY,
	hostname         text COLLATE "C" NOT NULL,
	agent_version    text COLLATE "C" NOT NULL DEFAULT '',
	os               text COLLATE "C" NOT NULL DEFAULT '',
	arch             text COLLATE "C" NOT NULL DEFAULT '',
	cert_serial      text COLLATE "C" NOT NULL DEFAULT '',
	first_seen       bigint  NOT NULL DEFAULT 0,
	last_seen        bigint  NOT NULL DEFAULT 0,
	online           boolean NOT NULL DEFAULT false,
	revoked          boolean NOT NULL DEFAULT false,
	revoked_at       bigint  NOT NULL DEFAULT 0,
	model            text COLLATE "C" NOT NULL DEFAULT '',
	cpu_model        text COLLATE "C" NOT NULL DEFAULT '',
	memory_bytes     uint64  NOT NULL DEFAULT 0,
	disk_total_bytes uint64  NOT NULL DEFAULT 0,
	disk_free_bytes  uint64  NOT NULL DEFAULT 0,
	user_name        text COLLATE "C" NOT NULL DEFAULT '',
	group_name       text COLLATE "C" NOT NULL DEFAULT '',
	unattended       boolean NOT NULL DEFAULT false,
	max_sessions     integer NOT NULL DEFAULT 0
);

-- One index per DeviceSort: its ORDER BY followed by the id tie-break, so
-- a page of any ordering is read in index order (backwards for
-- Descending). The expressions must match sortTerms in devices.go.
CREATE INDEX devices_by_hostname  ON devices (lower(hostname), id);
CREATE INDEX devices_by_last_seen ON devices (last_seen, id);
CREATE INDEX devices_by_os        ON devices (lower(os), id);
CREATE INDEX devices_by_model     ON devices (lower(model), id);
CREATE INDEX devices_by_cpu       ON devices (lower(cpu_model), id);
CREATE INDEX devices_by_memory    ON devices (memory_bytes, id);
CREATE INDEX devices_by_disk_free ON devices (disk_free_bytes, id);
CREATE INDEX devices_by_user      ON devices (lower(user_name), id);
CREATE INDEX devices_by_online    ON devices (online, id);

CREATE TABLE inventories (
	device_id    text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES devices (id),
	collected_at bigint NOT NULL,
	received_at  bigint NOT NULL,
	data         bytea
);

CREATE TABLE inventory_changes (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id  text COLLATE "C" NOT NULL REFERENCES devices (id),
	time       bigint NOT NULL,
	-- Free-form strings from agents' inventories, never searched: bytea,
	-- so any Go string round-trips (text refuses NUL).
	field      bytea  NOT NULL,
	from_value bytea  NOT NULL,
	to_value   bytea  NOT NULL
);

CREATE INDEX inventory_changes_by_device ON inventory_changes (device_id, time, seq);

-- Raw health samples. (device_id, id) is the agent's dedup key.
--
-- No foreign key to devices: its per-row check cost a third of the ingest
-- rate. AddHealthSamples instead reads the device row FOR KEY SHARE once
-- per batch, in the inserting statement (the lock the foreign key would
-- take for every row), and stores nothing for an unknown device. Deleting
-- a device, which the relay never does, would have to delete its samples.
CREATE TABLE health_raw (
	device_id     text COLLATE "C" NOT NULL,
	id            uint64 NOT NULL,
	time          bigint NOT NULL,
	cpu_percent   double precision NOT NULL,
	load1         double precision NOT NULL,
	mem_used      uint64 NOT NULL,
	mem_avail     uint64 NOT NULL,
	swap_used     uint64 NOT NULL,
	disk_used_pct double precision NOT NULL,
	net_rx_bps    double precision NOT NULL,
	net_tx_bps    double precision NOT NULL,
	detail        bytea,
	PRIMARY KEY (device_id, id)
);

CREATE INDEX health_raw_by_time ON health_raw (device_id, time, id);
-- CompactHealth scans by time across all devices.
CREATE INDEX health_raw_time ON health_raw (time);

-- Downsampled health: per (device, width, bucket start) the number of raw
-- samples folded in and the sum of each metric, so a later compaction can
-- merge more samples into a bucket and the average stays exact. Byte counts
-- sum as numeric, exactly.
CREATE TABLE health_buckets (
	device_id     text COLLATE "C" NOT NULL REFERENCES devices (id),
	width         bigint  NOT NULL CHECK (width > 0),
	start         bigint  NOT NULL,
	n             bigint  NOT NULL CHECK (n > 0),
	cpu_percent   double precision NOT NULL,
	load1         double precision NOT NULL,
	mem_used      numeric NOT NULL,
	mem_avail     numeric NOT NULL,
	swap_used     numeric NOT NULL,
	disk_used_pct double precision NOT NULL,
	net_rx_bps    double precision NOT NULL,
	net_tx_bps    double precision NOT NULL,
	PRIMARY KEY (device_id, width, start)
);

CREATE INDEX health_buckets_by_time ON health_buckets (device_id, start);
CREATE INDEX health_buckets_start ON health_buckets (start);

CREATE TABLE enroll_tokens (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	secret_hash bytea   NOT NULL,
	expires_at  bigint  NOT NULL,
	uses        integer NOT NULL,
	created_by  text COLLATE "C" NOT NULL,
	created_at  bigint  NOT NULL
);

CREATE TABLE technicians (
	name          text COLLATE "C" NOT NULL PRIMARY KEY,
	password_hash text COLLATE "C" NOT NULL,
	role          integer NOT NULL,
	totp_secret   text COLLATE "C" NOT NULL,
	failed_logins integer NOT NULL DEFAULT 0,
	locked_until  bigint  NOT NULL DEFAULT 0,
	created_at    bigint  NOT NULL
);

CREATE TABLE sessions (
	token_hash bytea  NOT NULL PRIMARY KEY,
	technician text COLLATE "C" NOT NULL REFERENCES technicians (name),
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);

CREATE INDEX sessions_by_technician ON sessions (technician);

-- The hash-chained audit log. AppendAudit serializes appenders with a
-- table lock; the constraints make a fork impossible even without it: one
-- event per position (seq), one successor per event (prev_hash), and only
-- the first event without a predecessor. The event's strings are bytea:
-- the log must take any string (text refuses NUL), and the hash covers
-- their exact bytes.
CREATE TABLE audit_log (
	seq       bigint NOT NULL PRIMARY KEY CHECK (seq > 0),
	time      bigint NOT NULL,
	actor     bytea  NOT NULL,
	action    bytea  NOT NULL,
	target    bytea  NOT NULL,
	detail    bytea  NOT NULL,
	prev_hash text COLLATE "C" NOT NULL UNIQUE,
	hash      text COLLATE "C" NOT NULL,
	CHECK ((seq = 1) = (prev_hash = ''))
);

-- Device groups (check thresholds per group), diagnostics reports and
-- commands queued for offline devices.
CREATE TABLE group_settings (
	name    text COLLATE "C" NOT NULL PRIMARY KEY,
	data    bytea  NOT NULL,
	updated bigint NOT NULL
);

CREATE TABLE check_reports (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id  text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	time       bigint  NOT NULL,
	technician text COLLATE "C" NOT NULL,
	overall    integer NOT NULL,
	data       bytea   NOT NULL
);

CREATE INDEX check_reports_device_time ON check_reports (device_id, time DESC, id DESC);

CREATE TABLE queued_commands (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id  text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	technician text COLLATE "C" NOT NULL,
	created    bigint NOT NULL,
	expires    bigint NOT NULL,
	data       bytea  NOT NULL
);

CREATE INDEX queued_commands_device ON queued_commands (device_id, id);
