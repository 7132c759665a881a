-- Technician accounts an admin manages: disabled accounts cannot sign in
-- (their sessions end), a password set by an admin must be changed at the
-- next sign-in, and the teams / device groups a technician works in (a
-- JSON array of names; empty: all).
ALTER TABLE technicians ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE technicians ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE technicians ADD COLUMN device_groups TEXT NOT NULL DEFAULT '[]';
