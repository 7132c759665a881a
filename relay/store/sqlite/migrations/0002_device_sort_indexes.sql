-- 0002_device_sort_indexes: indexes for the fleet view's other orderings.
--
-- Each index is the ORDER BY of one DeviceSort followed by the id
-- tie-break, so a page of any ordering is read in index order (forwards or,
-- for Descending, backwards) instead of sorting the whole fleet, and an
-- Offset skips index entries. The expressions must match sortTerms in
-- devices.go exactly. uint64 columns order as (col < 0, col): values above
-- MaxInt64 are stored negative and belong after all others.
CREATE INDEX devices_by_last_seen ON devices (last_seen, id);
CREATE INDEX devices_by_os ON devices (os COLLATE NOCASE, id);
CREATE INDEX devices_by_model ON devices (model COLLATE NOCASE, id);
CREATE INDEX devices_by_cpu ON devices (cpu_model COLLATE NOCASE, id);
CREATE INDEX devices_by_memory ON devices (memory_bytes < 0, memory_bytes, id);
CREATE INDEX devices_by_disk_free ON devices (disk_free_bytes < 0, disk_free_bytes, id);
CREATE INDEX devices_by_user ON devices (user_name COLLATE NOCASE, id);
CREATE INDEX devices_by_online ON devices (online, id);
