-- Remote-access policy per device.
ALTER TABLE devices ADD COLUMN unattended INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN max_sessions INTEGER NOT NULL DEFAULT 0;
