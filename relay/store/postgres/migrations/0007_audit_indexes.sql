-- Audit log filters (deskside audit --actor/--device/--action/--since,
-- the console's audit page): one index per filter, each ending in seq so
-- a filtered page newest-first is read from the index in order. The
-- strings are bytea, compared byte-wise, so the action prefix is a range.
CREATE INDEX audit_log_by_actor  ON audit_log (actor, seq);
CREATE INDEX audit_log_by_target ON audit_log (target, seq);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
CREATE INDEX audit_log_by_time   ON audit_log (time);
