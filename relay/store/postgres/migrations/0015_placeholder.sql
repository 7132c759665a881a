-- Placeholder keeping the migration numbers in order while another
-- branch's migration of this number is merged; it changes nothing.
SELECT 1;
