-- Aranea's schema on PostgreSQL. Keep in step with ../sqlite/0001_schema.sql: same tables,
-- columns, constraints and indexes; only the dialect differs. Times are Unix milliseconds (UTC).

CREATE TABLE reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         TEXT    NOT NULL,
    reporter    TEXT    NOT NULL,
    hotline     TEXT    NOT NULL,
    notes       TEXT    NOT NULL DEFAULT '',
    reported_at BIGINT  NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'queued', 'crawled', 'rejected'))
);
CREATE INDEX reports_by_status ON reports (status, reported_at);

-- The frontier's unit of leasing. A leased host has due_at = lease_until, so an expired
-- lease makes the host due again without any sweeper.
CREATE TABLE hosts (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key                TEXT    NOT NULL UNIQUE,
    registrable_domain TEXT    NOT NULL,
    due_at             BIGINT,
    next_allowed_at    BIGINT  NOT NULL DEFAULT 0,
    delay_ms           BIGINT  NOT NULL DEFAULT 0,
    crawl_delay_ms     BIGINT,
    lease_owner        TEXT,
    lease_until        BIGINT,
    lease_epoch        BIGINT  NOT NULL DEFAULT 0,
    error_streak       BIGINT  NOT NULL DEFAULT 0,
    quiet_pages        BIGINT  NOT NULL DEFAULT 0,
    robots_status      BIGINT,
    robots_body        BYTEA,
    robots_fetched_at  BIGINT,
    robots_expires_at  BIGINT,
    urls_known         BIGINT  NOT NULL DEFAULT 0,
    pages_fetched      BIGINT  NOT NULL DEFAULT 0,
    bytes_fetched      BIGINT  NOT NULL DEFAULT 0,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX hosts_by_due ON hosts (due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX hosts_by_domain ON hosts (registrable_domain);

CREATE TABLE urls (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id         BIGINT  NOT NULL REFERENCES hosts (id),
    url             TEXT    NOT NULL,
    url_hash        BYTEA   NOT NULL UNIQUE,
    source          TEXT    NOT NULL
                    CHECK (source IN ('report', 'seed', 'recheck', 'link', 'embed')),
    priority        BIGINT  NOT NULL,
    depth           BIGINT  NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'done', 'failed', 'skipped')),
    next_fetch_at   BIGINT  NOT NULL,
    leased_epoch    BIGINT,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    last_status     BIGINT,
    last_fetched_at BIGINT,
    etag            TEXT,
    last_modified   TEXT,
    report_id       BIGINT  REFERENCES reports (id),
    parent_id       BIGINT  REFERENCES urls (id),
    created_at      BIGINT  NOT NULL
);
CREATE INDEX urls_queued_by_priority ON urls (host_id, priority, next_fetch_at) WHERE state = 'queued';
CREATE INDEX urls_queued_by_time ON urls (host_id, next_fetch_at) WHERE state = 'queued';

CREATE TABLE fetches (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url_id      BIGINT  NOT NULL REFERENCES urls (id),
    fetched_at  BIGINT  NOT NULL,
    lease_epoch BIGINT  NOT NULL,
    status      BIGINT,
    server_ip   TEXT,
    bytes       BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL,
    error       TEXT
);
CREATE INDEX fetches_by_url ON fetches (url_id, fetched_at);

CREATE TABLE media (
    sha256      BYTEA   PRIMARY KEY,
    md5         BYTEA   NOT NULL,
    sha1        BYTEA   NOT NULL,
    pdq         BYTEA,
    pdq_quality BIGINT,
    size        BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    width       BIGINT,
    height      BIGINT,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL
);
CREATE INDEX media_by_md5 ON media (md5);
CREATE INDEX media_by_sha1 ON media (sha1);

-- page_url_id = url_id when the media was fetched directly rather than found on a page;
-- member_path = '' unless the media is an archive member. No NULLs in the natural key, so
-- the UNIQUE constraint holds on both back-ends.
CREATE TABLE sightings (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    media_sha256  BYTEA   NOT NULL REFERENCES media (sha256),
    url_id        BIGINT  NOT NULL REFERENCES urls (id),
    page_url_id   BIGINT  NOT NULL REFERENCES urls (id),
    member_path   TEXT    NOT NULL DEFAULT '',
    first_seen_at BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    server_ip     TEXT,
    UNIQUE (media_sha256, url_id, page_url_id, member_path)
);
CREATE INDEX sightings_by_page ON sightings (page_url_id);

CREATE TABLE matches (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sighting_id    BIGINT  NOT NULL REFERENCES sightings (id),
    bank_id        BIGINT  NOT NULL,
    bank_name      TEXT    NOT NULL,
    entry_id       BIGINT  NOT NULL,
    signal_type    TEXT    NOT NULL,
    distance       BIGINT  NOT NULL,
    classification TEXT    NOT NULL,
    matched_at     BIGINT  NOT NULL,
    UNIQUE (sighting_id, bank_id, entry_id)
);

CREATE TABLE review_queue (
    media_sha256 BYTEA   PRIMARY KEY REFERENCES media (sha256),
    sighting_id  BIGINT  REFERENCES sightings (id),
    reason       TEXT    NOT NULL CHECK (reason IN ('on_matching_page', 'reported')),
    priority     BIGINT  NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'in_review', 'decided')),
    created_at   BIGINT  NOT NULL
);
CREATE INDEX review_by_state ON review_queue (state, priority, created_at);
