-- Aranea's schema on SQLite. Keep in step with ../postgres/0001_schema.sql: same tables,
-- columns, constraints and indexes; only the dialect differs. Times are Unix milliseconds (UTC).

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    url         TEXT    NOT NULL,
    reporter    TEXT    NOT NULL,
    hotline     TEXT    NOT NULL,
    notes       TEXT    NOT NULL DEFAULT '',
    reported_at INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'queued', 'crawled', 'rejected'))
);
CREATE INDEX reports_by_status ON reports (status, reported_at);

-- The frontier's unit of leasing. A leased host has due_at = lease_until, so an expired
-- lease makes the host due again without any sweeper.
CREATE TABLE hosts (
    id                 INTEGER PRIMARY KEY,
    key                TEXT    NOT NULL UNIQUE,
    registrable_domain TEXT    NOT NULL,
    due_at             INTEGER,
    next_allowed_at    INTEGER NOT NULL DEFAULT 0,
    delay_ms           INTEGER NOT NULL DEFAULT 0,
    crawl_delay_ms     INTEGER,
    lease_owner        TEXT,
    lease_until        INTEGER,
    lease_epoch        INTEGER NOT NULL DEFAULT 0,
    error_streak       INTEGER NOT NULL DEFAULT 0,
    quiet_pages        INTEGER NOT NULL DEFAULT 0,
    robots_status      INTEGER,
    robots_body        BLOB,
    robots_fetched_at  INTEGER,
    robots_expires_at  INTEGER,
    urls_known         INTEGER NOT NULL DEFAULT 0,
    pages_fetched      INTEGER NOT NULL DEFAULT 0,
    bytes_fetched      INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);
CREATE INDEX hosts_by_due ON hosts (due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX hosts_by_domain ON hosts (registrable_domain);

CREATE TABLE urls (
    id              INTEGER PRIMARY KEY,
    host_id         INTEGER NOT NULL REFERENCES hosts (id),
    url             TEXT    NOT NULL,
    url_hash        BLOB    NOT NULL UNIQUE,
    source          TEXT    NOT NULL
                    CHECK (source IN ('report', 'seed', 'recheck', 'link', 'embed')),
    priority        INTEGER NOT NULL,
    depth           INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'done', 'failed', 'skipped')),
    next_fetch_at   INTEGER NOT NULL,
    leased_epoch    INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_fetched_at INTEGER,
    etag            TEXT,
    last_modified   TEXT,
    report_id       INTEGER REFERENCES reports (id),
    parent_id       INTEGER REFERENCES urls (id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX urls_queued_by_priority ON urls (host_id, priority, next_fetch_at) WHERE state = 'queued';
CREATE INDEX urls_queued_by_time ON urls (host_id, next_fetch_at) WHERE state = 'queued';

CREATE TABLE fetches (
    id          INTEGER PRIMARY KEY,
    url_id      INTEGER NOT NULL REFERENCES urls (id),
    fetched_at  INTEGER NOT NULL,
    lease_epoch INTEGER NOT NULL,
    status      INTEGER,
    server_ip   TEXT,
    bytes       INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX fetches_by_url ON fetches (url_id, fetched_at);

CREATE TABLE media (
    sha256      BLOB    PRIMARY KEY,
    md5         BLOB    NOT NULL,
    sha1        BLOB    NOT NULL,
    pdq         BLOB,
    pdq_quality INTEGER,
    size        INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    width       INTEGER,
    height      INTEGER,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);
CREATE INDEX media_by_md5 ON media (md5);
CREATE INDEX media_by_sha1 ON media (sha1);

-- page_url_id = url_id when the media was fetched directly rather than found on a page;
-- member_path = '' unless the media is an archive member. No NULLs in the natural key, so
-- the UNIQUE constraint holds on both back-ends.
CREATE TABLE sightings (
    id            INTEGER PRIMARY KEY,
    media_sha256  BLOB    NOT NULL REFERENCES media (sha256),
    url_id        INTEGER NOT NULL REFERENCES urls (id),
    page_url_id   INTEGER NOT NULL REFERENCES urls (id),
    member_path   TEXT    NOT NULL DEFAULT '',
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    server_ip     TEXT,
    UNIQUE (media_sha256, url_id, page_url_id, member_path)
);
CREATE INDEX sightings_by_page ON sightings (page_url_id);

CREATE TABLE matches (
    id             INTEGER PRIMARY KEY,
    sighting_id    INTEGER NOT NULL REFERENCES sightings (id),
    bank_id        INTEGER NOT NULL,
    bank_name      TEXT    NOT NULL,
    entry_id       INTEGER NOT NULL,
    signal_type    TEXT    NOT NULL,
    distance       INTEGER NOT NULL,
    classification TEXT    NOT NULL,
    matched_at     INTEGER NOT NULL,
    UNIQUE (sighting_id, bank_id, entry_id)
);

CREATE TABLE review_queue (
    media_sha256 BLOB    PRIMARY KEY REFERENCES media (sha256),
    sighting_id  INTEGER REFERENCES sightings (id),
    reason       TEXT    NOT NULL CHECK (reason IN ('on_matching_page', 'reported')),
    priority     INTEGER NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'in_review', 'decided')),
    created_at   INTEGER NOT NULL
);
CREATE INDEX review_by_state ON review_queue (state, priority, created_at);
