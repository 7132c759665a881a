-- A technician's email address, for assignment and escalation mail
-- (relay/notify); empty: none.
ALTER TABLE technicians ADD COLUMN email text NOT NULL DEFAULT '';
