-- archiver's SQLite schema at revision 0010
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE checkpoints (
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	position DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (source, account)
);

CREATE TABLE coverage (
	id INTEGER NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	window_from DATETIME NOT NULL, 
	window_to DATETIME NOT NULL, 
	records INTEGER NOT NULL, 
	pages INTEGER NOT NULL, 
	finished_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_coverage_window ON coverage (source, account, window_from);

CREATE TABLE gaps (
	id INTEGER NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	gap_from DATETIME NOT NULL, 
	gap_to DATETIME NOT NULL, 
	reason TEXT NOT NULL, 
	detected_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_gaps UNIQUE (source, account, gap_from, gap_to, reason)
);

CREATE TABLE runs (
	id INTEGER NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	ok BOOLEAN, 
	records INTEGER, 
	requests INTEGER, 
	error TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_runs_source ON runs (source, account, started_at);

CREATE TABLE quarantine (
	id INTEGER NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	digest VARCHAR(64) NOT NULL, 
	raw TEXT NOT NULL, 
	reason TEXT NOT NULL, 
	seen_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_quarantine_digest UNIQUE (source, account, digest)
);

CREATE TABLE archive_secrets (
	name VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY (name)
);

CREATE TABLE tombstones (
	digest VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (digest)
);

CREATE TABLE erasure_log (
	id INTEGER NOT NULL, 
	erased_at DATETIME NOT NULL, 
	digest VARCHAR(64) NOT NULL, 
	counts TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE leases (
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	owner VARCHAR(300), 
	epoch BIGINT DEFAULT '0' NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (source, account)
);

CREATE TABLE workers (
	owner VARCHAR(300) NOT NULL, 
	beat_at DATETIME NOT NULL, 
	PRIMARY KEY (owner)
);

CREATE TABLE tallies (
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	records BIGINT NOT NULL, 
	PRIMARY KEY (source, account)
);

CREATE VIRTUAL TABLE events_text USING fts5(text, tokenize='trigram');

CREATE TABLE "records" (
	id INTEGER NOT NULL, 
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	natural_key VARCHAR(128) NOT NULL, 
	record_at DATETIME NOT NULL, 
	version INTEGER DEFAULT '1' NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	event_type VARCHAR(64), 
	message_id VARCHAR(256), 
	direction VARCHAR(16), 
	status VARCHAR(32), 
	status_detail VARCHAR(64), 
	occurred_at DATETIME, 
	done_at DATETIME, 
	sender VARCHAR(256), 
	recipient VARCHAR(256), 
	content_type VARCHAR(64), 
	text TEXT, 
	error_code BIGINT, 
	error_title TEXT, 
	created_at DATETIME, 
	price FLOAT, 
	currency VARCHAR(8), 
	conversation_id VARCHAR(128), 
	conversation_origin VARCHAR(64), 
	pricing_category VARCHAR(64), 
	billable BOOLEAN, 
	reaction VARCHAR(64), 
	interactive_id VARCHAR(256), 
	media_id VARCHAR(256), 
	media_mime_type VARCHAR(128), 
	is_final BOOLEAN, 
	parse_error TEXT, 
	raw JSON NOT NULL, 
	PRIMARY KEY (id)
);

CREATE UNIQUE INDEX uq_records_key ON records (natural_key, source, account);

CREATE INDEX ix_records_time ON records (record_at, source);

CREATE INDEX ix_records_sender ON records (sender);

CREATE INDEX ix_records_recipient ON records (recipient);

CREATE INDEX ix_records_message_id ON records (message_id);

CREATE TRIGGER events_text_delete AFTER DELETE ON records WHEN old.text IS NOT NULL BEGIN DELETE FROM events_text WHERE rowid = old.id; END;

CREATE VIEW events AS SELECT id, source, account, natural_key, event_type, message_id, direction, status, status_detail, occurred_at, done_at, sender, recipient, content_type, text, error_code, error_title, created_at, price, currency, conversation_id, conversation_origin, pricing_category, billable, reaction, interactive_id, media_id, media_mime_type, is_final, parse_error FROM records;

CREATE TABLE "messages" (
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	message_id VARCHAR(256) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	status_rank INTEGER NOT NULL, 
	status_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (source, account, message_id)
)
 WITHOUT ROWID

;

CREATE TABLE past_statuses (
	source VARCHAR(32) NOT NULL, 
	account VARCHAR(64) NOT NULL, 
	message_id VARCHAR(256) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	status_detail VARCHAR(64) DEFAULT '' NOT NULL, 
	seen_at DATETIME NOT NULL, 
	CONSTRAINT past_statuses_pkey PRIMARY KEY (source, account, message_id, status, status_detail)
)
 WITHOUT ROWID

;

CREATE VIEW status_history AS SELECT source, account, message_id, status, status_detail, seen_at FROM past_statuses UNION ALL SELECT r.source, r.account, r.message_id, r.status, coalesce(r.status_detail, '') AS status_detail, min(r.first_seen_at) AS seen_at FROM records r WHERE r.message_id <> '' AND r.status <> '' AND NOT EXISTS (SELECT 1 FROM past_statuses p WHERE p.source = r.source AND p.account = r.account AND p.message_id = r.message_id AND p.status = r.status AND p.status_detail = coalesce(r.status_detail, '')) GROUP BY r.source, r.account, r.message_id, r.status, coalesce(r.status_detail, '');

CREATE TRIGGER records_past_status AFTER UPDATE ON records WHEN OLD.status IS NOT NEW.status OR OLD.status_detail IS NOT NEW.status_detail OR OLD.message_id IS NOT NEW.message_id BEGIN INSERT INTO past_statuses (source, account, message_id, status, status_detail, seen_at) SELECT OLD.source, OLD.account, OLD.message_id, OLD.status, coalesce(OLD.status_detail, ''), (SELECT min(t) FROM (SELECT OLD.first_seen_at AS t UNION ALL SELECT o.first_seen_at FROM records o WHERE o.source = OLD.source AND o.account = OLD.account AND o.message_id = OLD.message_id AND o.status = OLD.status AND coalesce(o.status_detail, '') = coalesce(OLD.status_detail, '') AND o.id <> NEW.id) AS s) WHERE OLD.message_id <> '' AND OLD.status <> '' AND NOT EXISTS (SELECT 1 FROM past_statuses p WHERE p.source = OLD.source AND p.account = OLD.account AND p.message_id = OLD.message_id AND p.status = OLD.status AND p.status_detail = coalesce(OLD.status_detail, '')); INSERT INTO past_statuses (source, account, message_id, status, status_detail, seen_at) SELECT NEW.source, NEW.account, NEW.message_id, NEW.status, coalesce(NEW.status_detail, ''), (SELECT min(t) FROM (SELECT NEW.updated_at AS t UNION ALL SELECT o.first_seen_at FROM records o WHERE o.source = NEW.source AND o.account = NEW.account AND o.message_id = NEW.message_id AND o.status = NEW.status AND coalesce(o.status_detail, '') = coalesce(NEW.status_detail, '') AND o.id <> NEW.id) AS s) WHERE NEW.message_id <> '' AND NEW.status <> '' AND NOT EXISTS (SELECT 1 FROM past_statuses p WHERE p.source = NEW.source AND p.account = NEW.account AND p.message_id = NEW.message_id AND p.status = NEW.status AND p.status_detail = coalesce(NEW.status_detail, '')); END;

