-- Technician accounts an admin manages: disabled accounts cannot sign in
-- (their sessions end), a password set by an admin must be changed at the
-- next sign-in, and the teams / device groups a technician works in (a
-- JSON array of names; empty: all).
ALTER TABLE technicians ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE technicians ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
ALTER TABLE technicians ADD COLUMN device_groups text COLLATE "C" NOT NULL DEFAULT '[]';
