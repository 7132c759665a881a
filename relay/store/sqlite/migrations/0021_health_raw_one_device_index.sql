-- Raw health samples with one per-device index instead of two (docs/adr
-- 36): UNIQUE (device_id, id) and health_raw_by_time (device_id, time, id)
-- each put every new sample in a page of its own among 10,000 devices, so
-- a commit wrote two index pages per report. An agent resends a sample
-- with the id and the time it was taken, so (device_id, time, id) is as
-- good a duplicate key, and it is also the order the reads want.
CREATE TABLE health_raw_new (
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
	UNIQUE (device_id, time, id)
) STRICT;
INSERT INTO health_raw_new SELECT device_id, id, time, cpu_percent, load1, mem_used, mem_avail,
	swap_used, disk_used_pct, net_rx_bps, net_tx_bps, detail FROM health_raw ORDER BY rowid;
DROP TABLE health_raw;
ALTER TABLE health_raw_new RENAME TO health_raw;
-- CompactHealth scans by time across all devices.
CREATE INDEX health_raw_time ON health_raw (time);
