-- Review (issue 6): hotlines, analysts, sessions, the review items analysts classify, their
-- votes and decisions, the encrypted media vault and the hash-chained audit trail.
-- Keep in step with ../postgres/0004_review.sql: same tables, columns and constraints.

CREATE TABLE hotlines (
    id                 INTEGER PRIMARY KEY,
    code               TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    country            TEXT    NOT NULL,
    languages          TEXT    NOT NULL DEFAULT '',
    jurisdiction       TEXT    NOT NULL,
    shares_review_pool INTEGER NOT NULL DEFAULT 1 CHECK (shares_review_pool IN (0, 1)),
    shares_banks       INTEGER NOT NULL DEFAULT 1 CHECK (shares_banks IN (0, 1)),
    daily_cap          INTEGER NOT NULL DEFAULT 200,
    created_at         INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    hotline_id    INTEGER NOT NULL REFERENCES hotlines (id),
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('analyst', 'senior_analyst',
                          'hotline_operator', 'auditor', 'platform_admin')),
    password_hash TEXT    NOT NULL,
    totp_secret   BLOB,
    -- A second factor being enrolled: enforced only once a code from it is confirmed.
    totp_pending  BLOB,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    -- Set by an operator's reset of a lost second factor: the user must enrol a new one
    -- before doing anything else.
    totp_enrol_required INTEGER NOT NULL DEFAULT 0 CHECK (totp_enrol_required IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER NOT NULL DEFAULT 0,
    daily_cap     INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_by_hotline ON users (hotline_id);

-- Only the SHA-256 of a session token is stored: a database read does not yield a login.
CREATE TABLE sessions (
    token_hash   BLOB    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT    NOT NULL,
    source       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- One item per distinct media; near-duplicates (by PDQ) join the item of the first.
-- owner_hotline is the hotline whose report led to the media, NULL when none is known.
CREATE TABLE review_items (
    id            INTEGER PRIMARY KEY,
    lead_sha256   BLOB    NOT NULL UNIQUE REFERENCES media (sha256),
    pdq           BLOB,
    owner_hotline TEXT,
    state         TEXT    NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'disputed', 'decided')),
    pages         INTEGER NOT NULL DEFAULT 0,
    sites         INTEGER NOT NULL DEFAULT 0,
    providers     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    decided_at    INTEGER
);
CREATE INDEX review_items_by_state ON review_items (state, providers, sites, pages, id);

CREATE TABLE review_item_media (
    media_sha256 BLOB    PRIMARY KEY REFERENCES media (sha256),
    item_id      INTEGER NOT NULL REFERENCES review_items (id),
    pdq_distance INTEGER NOT NULL DEFAULT 0,
    added_at     INTEGER NOT NULL
);
CREATE INDEX review_item_media_by_item ON review_item_media (item_id);

-- An item served to a user, once: the queue never serves it to them again.
CREATE TABLE item_views (
    item_id   INTEGER NOT NULL REFERENCES review_items (id),
    user_id   INTEGER NOT NULL REFERENCES users (id),
    served_at INTEGER NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX item_views_by_user ON item_views (user_id, served_at);

-- Facts, never verdicts: verdicts are derived by the mapping tables.
CREATE TABLE votes (
    id              INTEGER PRIMARY KEY,
    item_id         INTEGER NOT NULL REFERENCES review_items (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    hotline_id      INTEGER NOT NULL REFERENCES hotlines (id),
    age_band        TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    harmful_context INTEGER NOT NULL CHECK (harmful_context IN (0, 1)),
    not_relevant    INTEGER NOT NULL CHECK (not_relevant IN (0, 1)),
    cast_at         INTEGER NOT NULL,
    UNIQUE (item_id, user_id)
);

CREATE TABLE decisions (
    id              INTEGER PRIMARY KEY,
    item_id         INTEGER NOT NULL REFERENCES review_items (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('consensus', 'senior', 'appeal')),
    decided_by      INTEGER REFERENCES users (id),
    age_band        TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    harmful_context INTEGER NOT NULL CHECK (harmful_context IN (0, 1)),
    not_relevant    INTEGER NOT NULL CHECK (not_relevant IN (0, 1)),
    classification  TEXT    NOT NULL,
    positive        INTEGER NOT NULL CHECK (positive IN (0, 1)),
    note            TEXT    NOT NULL DEFAULT '',
    decided_at      INTEGER NOT NULL,
    applied_at      INTEGER,
    superseded_by   INTEGER
);
CREATE INDEX decisions_by_item ON decisions (item_id, id);
CREATE INDEX decisions_unapplied ON decisions (applied_at) WHERE applied_at IS NULL;

-- Bank entries a positive decision created; disabled (never deleted) when an appeal reverses it.
CREATE TABLE decision_bank_entries (
    decision_id  INTEGER NOT NULL REFERENCES decisions (id),
    bank_id      INTEGER NOT NULL,
    entry_id     INTEGER NOT NULL,
    media_sha256 BLOB    NOT NULL,
    signal_type  TEXT    NOT NULL,
    disabled_at  INTEGER,
    PRIMARY KEY (decision_id, bank_id, entry_id, media_sha256)
);

-- Media decided not relevant: never queued again.
CREATE TABLE known_negatives (
    media_sha256 BLOB    PRIMARY KEY,
    md5          BLOB    NOT NULL,
    sha1         BLOB    NOT NULL,
    pdq          BLOB,
    decision_id  INTEGER NOT NULL REFERENCES decisions (id),
    recorded_at  INTEGER NOT NULL
);

-- Matches whose decision an appeal reversed: the notice pipeline withdraws their notices.
CREATE TABLE match_withdrawals (
    match_id     INTEGER PRIMARY KEY REFERENCES matches (id),
    decision_id  INTEGER NOT NULL REFERENCES decisions (id),
    withdrawn_at INTEGER NOT NULL
);

-- Encrypted bytes of queued media and of their blurred grayscale thumbnail (made once,
-- sealed like the bytes); both are NULL once purged.
CREATE TABLE vault (
    media_sha256 BLOB    PRIMARY KEY,
    ciphertext   BLOB,
    thumbnail    BLOB,
    size         INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    purged_at    INTEGER,
    purge_reason TEXT
);
CREATE INDEX vault_by_expiry ON vault (expires_at) WHERE purged_at IS NULL;

-- Append-only, each row chained to the previous by hash; audit_head holds the last one so
-- a deleted tail is detected too.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    user_id   INTEGER,
    actor     TEXT    NOT NULL,
    hotline   TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);
CREATE INDEX audit_by_hotline ON audit_log (hotline, seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
);
