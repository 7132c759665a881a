-- The operating system as the device's inventory names it (name, version,
-- family, and the short display name the fleet view shows), which the OS
-- filter and the free-text query search besides the agent's OS ("linux");
-- and the machine id that re-enrollment from the same machine matches.
ALTER TABLE devices ADD COLUMN os_name text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN os_version text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN os_family text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN os_display text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN machine_id text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX devices_by_machine_id ON devices (machine_id) WHERE machine_id <> '';
-- Sorting by OS orders by the name shown, then the agent's OS.
DROP INDEX devices_by_os;
CREATE INDEX devices_by_os ON devices (lower(os_display), lower(os), id);
