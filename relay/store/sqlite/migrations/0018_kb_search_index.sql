-- Knowledge-base search (docs/adr 23).
--
-- kb_articles_search: the columns a search filters and
-- breaks ties on, keyed by id, so that ranking thousands of matches reads
-- this small index instead of one article row (a page: the body is inline)
-- per match.
CREATE INDEX kb_articles_search ON kb_articles (id, published, category, updated);

-- The title and tags alone, without positions (detail=none): the search
-- whose every word is in most articles returns the articles with one of
-- them in the title or tags, and finding those in kb_fts would read the
-- words' position lists in every body to filter by column.
CREATE VIRTUAL TABLE kb_fts_head USING fts5 (
	title, tags,
	content = 'kb_articles', content_rowid = 'id',
	tokenize = 'porter unicode61 remove_diacritics 2',
	detail = 'none'
);
INSERT INTO kb_fts_head (kb_fts_head) VALUES ('rebuild');

CREATE TRIGGER kb_articles_fts_head_insert AFTER INSERT ON kb_articles BEGIN
	INSERT INTO kb_fts_head (rowid, title, tags) VALUES (new.id, new.title, new.tags);
END;
CREATE TRIGGER kb_articles_fts_head_delete AFTER DELETE ON kb_articles BEGIN
	INSERT INTO kb_fts_head (kb_fts_head, rowid, title, tags) VALUES ('delete', old.id, old.title, old.tags);
END;
CREATE TRIGGER kb_articles_fts_head_update AFTER UPDATE OF title, tags ON kb_articles BEGIN
	INSERT INTO kb_fts_head (kb_fts_head, rowid, title, tags) VALUES ('delete', old.id, old.title, old.tags);
	INSERT INTO kb_fts_head (rowid, title, tags) VALUES (new.id, new.title, new.tags);
END;
