-- Knowledge-base search (docs/adr 23).
--
-- head: the title (weight A) and tags (B) alone, a small tsvector under its
-- own GIN index. ts_rank with the KB's weights scores a word in the title
-- or tags above any number of body matches, so the best-ranked articles are
-- usually among the few whose title or tags hold a search word: those are
-- ranked first, and every match only when they cannot fill the page
-- (relay/store/postgres/kb.go says when that is exact).
-- search is kept in the row (compressed if need be) rather than in TOAST,
-- so that ranking many matches reads the heap pages the scan visits anyway,
-- not three TOAST index and chunk reads per match; the body moves out of
-- line instead. Adding head rewrites the table, which applies this to
-- existing rows too.
ALTER TABLE kb_articles ALTER COLUMN search SET STORAGE MAIN;
ALTER TABLE kb_articles ADD COLUMN head tsvector GENERATED ALWAYS AS (
	setweight(to_tsvector('english'::regconfig, title), 'A') ||
	setweight(to_tsvector('english'::regconfig, tags), 'B')
) STORED;
CREATE INDEX kb_articles_head ON kb_articles USING gin (head) WITH (fastupdate = off);
-- Without GIN's pending list every search would scan it (up to 4 MB) until
-- (auto)vacuum merged it; articles are written rarely, so the index is
-- updated at once instead.
ALTER INDEX kb_articles_search SET (fastupdate = off);
SELECT gin_clean_pending_list('kb_articles_search'::regclass);
