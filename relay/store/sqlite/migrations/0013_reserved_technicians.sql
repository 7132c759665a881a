-- Reserved for the technicians migration (issue 12), which another branch
-- adds as 0013; this placeholder keeps the numbering gap-free on the kb
-- branch and is dropped when the branches are merged.
SELECT 1;
