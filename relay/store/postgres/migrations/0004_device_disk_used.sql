-- The system volume's used bytes, so the fleet's free percentage is df's
-- (available / (used + available)) rather than available / size, which
-- counts root's reserved blocks as used. Rows from before get used as size
-- minus available until their next inventory.
ALTER TABLE devices ADD COLUMN disk_used_bytes uint64 NOT NULL DEFAULT 0;
UPDATE devices SET disk_used_bytes = disk_total_bytes - disk_free_bytes
	WHERE disk_total_bytes >= disk_free_bytes;
