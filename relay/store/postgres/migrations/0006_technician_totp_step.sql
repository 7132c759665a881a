-- The last TOTP time step a technician signed in with, so that a code is
-- accepted once (a replayed code of the same or an earlier step is refused).
ALTER TABLE technicians ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;
