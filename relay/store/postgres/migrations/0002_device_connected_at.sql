-- When the device's current stream said hello (Unix ns): a stream that
-- ends marks the device offline only if no newer one has connected since
-- (the relays share this database).
ALTER TABLE devices ADD COLUMN connected_at bigint NOT NULL DEFAULT 0;
