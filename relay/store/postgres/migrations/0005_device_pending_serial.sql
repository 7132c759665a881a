-- The serial of a renewed device certificate the agent has not connected
-- with yet: accepted besides cert_serial until the first connection with
-- it makes it current.
ALTER TABLE devices ADD COLUMN pending_serial TEXT NOT NULL DEFAULT '';
