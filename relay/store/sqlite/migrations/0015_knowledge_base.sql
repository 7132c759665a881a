-- The knowledge base (package relay/kb, docs/adr 23): articles in Markdown,
-- their tags, links to tickets by code (no foreign key: tickets are another
-- domain) and an FTS5 index over title, tags and body kept in step by
-- triggers (external content: the text is stored once, in kb_articles).
CREATE TABLE kb_articles (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	slug         TEXT NOT NULL UNIQUE,
	title        TEXT NOT NULL,
	category     TEXT NOT NULL DEFAULT '',
	-- The tags joined by spaces, for the full-text index; kb_article_tags
	-- is what filters use.
	tags         TEXT NOT NULL DEFAULT '',
	published    INTEGER NOT NULL DEFAULT 0,
	version      INTEGER NOT NULL,
	author       TEXT NOT NULL,
	updated_by   TEXT NOT NULL,
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL,
	published_at INTEGER NOT NULL DEFAULT 0,
	-- Last, so that reading the other columns (filters, listings, search
	-- ranking) never walks a long body's overflow pages.
	body         TEXT NOT NULL
);
CREATE INDEX kb_articles_updated ON kb_articles (updated DESC, id DESC);
CREATE INDEX kb_articles_category ON kb_articles (category, updated DESC, id DESC);

CREATE TABLE kb_article_tags (
	article_id INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	tag        TEXT NOT NULL,
	PRIMARY KEY (tag, article_id)
);
CREATE INDEX kb_article_tags_article ON kb_article_tags (article_id);

CREATE TABLE kb_ticket_links (
	article_id INTEGER NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	ticket     TEXT NOT NULL,
	linked_by  TEXT NOT NULL,
	linked     INTEGER NOT NULL,
	PRIMARY KEY (article_id, ticket)
);
CREATE INDEX kb_ticket_links_ticket ON kb_ticket_links (ticket, linked DESC);

CREATE VIRTUAL TABLE kb_fts USING fts5 (
	title, tags, body,
	content = 'kb_articles', content_rowid = 'id',
	tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER kb_articles_fts_insert AFTER INSERT ON kb_articles BEGIN
	INSERT INTO kb_fts (rowid, title, tags, body) VALUES (new.id, new.title, new.tags, new.body);
END;
CREATE TRIGGER kb_articles_fts_delete AFTER DELETE ON kb_articles BEGIN
	INSERT INTO kb_fts (kb_fts, rowid, title, tags, body) VALUES ('delete', old.id, old.title, old.tags, old.body);
END;
CREATE TRIGGER kb_articles_fts_update AFTER UPDATE OF title, tags, body ON kb_articles BEGIN
	INSERT INTO kb_fts (kb_fts, rowid, title, tags, body) VALUES ('delete', old.id, old.title, old.tags, old.body);
	INSERT INTO kb_fts (rowid, title, tags, body) VALUES (new.id, new.title, new.tags, new.body);
END;
