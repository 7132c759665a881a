-- Knowledge-base search (docs/adr 23): the columns a search filters and
-- breaks ties on, keyed by id, so that ranking thousands of matches reads
-- this small index instead of one article row (a page: the body is inline)
-- per match.
CREATE INDEX kb_articles_search ON kb_articles (id, published, category, updated);
