-- Reserved for the technicians migration of issue 12, which is built on
-- another branch; this placeholder keeps the numbering contiguous and is
-- replaced by that migration when the branches meet.
SELECT 1;
