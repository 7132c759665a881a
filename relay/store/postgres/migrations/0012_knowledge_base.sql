-- The knowledge base (package relay/kb, docs/adr 23): articles in Markdown,
-- their tags, links to tickets by code (no foreign key: tickets are another
-- domain), and a weighted tsvector (title A, tags B, body C; English
-- stemming) kept by the database as a generated column under a GIN index.
-- Text here never holds NUL (relay/kb removes control characters).
CREATE TABLE kb_articles (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	slug         text COLLATE "C" NOT NULL UNIQUE,
	title        text NOT NULL,
	body         text NOT NULL,
	category     text COLLATE "C" NOT NULL DEFAULT '',
	-- The tags joined by spaces, for the full-text index; kb_article_tags
	-- is what filters use.
	tags         text NOT NULL DEFAULT '',
	published    boolean NOT NULL DEFAULT false,
	version      bigint NOT NULL,
	author       text COLLATE "C" NOT NULL,
	updated_by   text COLLATE "C" NOT NULL,
	created      bigint NOT NULL,
	updated      bigint NOT NULL,
	published_at bigint NOT NULL DEFAULT 0,
	search       tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('english'::regconfig, title), 'A') ||
		setweight(to_tsvector('english'::regconfig, tags), 'B') ||
		setweight(to_tsvector('english'::regconfig, body), 'C')
	) STORED
);
CREATE INDEX kb_articles_search ON kb_articles USING gin (search);
CREATE INDEX kb_articles_updated ON kb_articles (updated DESC, id DESC);
CREATE INDEX kb_articles_category ON kb_articles (category, updated DESC, id DESC);

CREATE TABLE kb_article_tags (
	article_id bigint NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	tag        text COLLATE "C" NOT NULL,
	PRIMARY KEY (tag, article_id)
);
CREATE INDEX kb_article_tags_article ON kb_article_tags (article_id);

CREATE TABLE kb_ticket_links (
	article_id bigint NOT NULL REFERENCES kb_articles (id) ON DELETE CASCADE,
	ticket     text COLLATE "C" NOT NULL,
	linked_by  text COLLATE "C" NOT NULL,
	linked     bigint NOT NULL,
	PRIMARY KEY (article_id, ticket)
);
CREATE INDEX kb_ticket_links_ticket ON kb_ticket_links (ticket, linked DESC);
