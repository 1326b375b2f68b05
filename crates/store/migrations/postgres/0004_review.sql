-- Review (issue 6): hotlines, analysts, sessions, the review items analysts classify, their
-- votes and decisions, the encrypted media vault and the hash-chained audit trail.
-- Keep in step with ../sqlite/0004_review.sql: same tables, columns and constraints.

CREATE TABLE hotlines (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code               TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    country            TEXT    NOT NULL,
    languages          TEXT    NOT NULL DEFAULT '',
    jurisdiction       TEXT    NOT NULL,
    shares_review_pool BIGINT  NOT NULL DEFAULT 1 CHECK (shares_review_pool IN (0, 1)),
    shares_banks       BIGINT  NOT NULL DEFAULT 1 CHECK (shares_banks IN (0, 1)),
    daily_cap          BIGINT  NOT NULL DEFAULT 200,
    created_at         BIGINT  NOT NULL
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hotline_id    BIGINT  NOT NULL REFERENCES hotlines (id),
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('analyst', 'senior_analyst',
                          'hotline_operator', 'auditor', 'platform_admin')),
    password_hash TEXT    NOT NULL,
    totp_secret   BYTEA,
    -- A second factor being enrolled: enforced only once a code from it is confirmed.
    totp_pending  BYTEA,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    -- Set by an operator's reset of a lost second factor: the user must enrol a new one
    -- before doing anything else.
    totp_enrol_required BIGINT NOT NULL DEFAULT 0 CHECK (totp_enrol_required IN (0, 1)),
    disabled      BIGINT  NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT  NOT NULL DEFAULT 0,
    daily_cap     BIGINT ,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX users_by_hotline ON users (hotline_id);

-- Only the SHA-256 of a session token is stored: a database read does not yield a login.
CREATE TABLE sessions (
    token_hash   BYTEA    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    csrf_token   TEXT    NOT NULL,
    source       TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- One item per distinct media; near-duplicates (by PDQ) join the item of the first.
-- owner_hotline is the hotline whose report led to the media, NULL when none is known.
CREATE TABLE review_items (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_sha256   BYTEA    NOT NULL UNIQUE REFERENCES media (sha256),
    pdq           BYTEA,
    owner_hotline TEXT,
    state         TEXT    NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'disputed', 'decided')),
    pages         BIGINT  NOT NULL DEFAULT 0,
    sites         BIGINT  NOT NULL DEFAULT 0,
    providers     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    decided_at    BIGINT 
);
CREATE INDEX review_items_by_state ON review_items (state, providers, sites, pages, id);

CREATE TABLE review_item_media (
    media_sha256 BYTEA    PRIMARY KEY REFERENCES media (sha256),
    item_id      BIGINT  NOT NULL REFERENCES review_items (id),
    pdq_distance BIGINT  NOT NULL DEFAULT 0,
    added_at     BIGINT  NOT NULL
);
CREATE INDEX review_item_media_by_item ON review_item_media (item_id);

-- An item served to a user, once: the queue never serves it to them again.
CREATE TABLE item_views (
    item_id   BIGINT  NOT NULL REFERENCES review_items (id),
    user_id   BIGINT  NOT NULL REFERENCES users (id),
    served_at BIGINT  NOT NULL,
    PRIMARY KEY (item_id, user_id)
);
CREATE INDEX item_views_by_user ON item_views (user_id, served_at);

-- Facts, never verdicts: verdicts are derived by the mapping tables.
CREATE TABLE votes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id         BIGINT  NOT NULL REFERENCES review_items (id),
    user_id         BIGINT  NOT NULL REFERENCES users (id),
    hotline_id      BIGINT  NOT NULL REFERENCES hotlines (id),
    age_band        TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    harmful_context BIGINT  NOT NULL CHECK (harmful_context IN (0, 1)),
    not_relevant    BIGINT  NOT NULL CHECK (not_relevant IN (0, 1)),
    cast_at         BIGINT  NOT NULL,
    UNIQUE (item_id, user_id)
);

CREATE TABLE decisions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id         BIGINT  NOT NULL REFERENCES review_items (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('consensus', 'senior', 'appeal')),
    decided_by      BIGINT  REFERENCES users (id),
    age_band        TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    harmful_context BIGINT  NOT NULL CHECK (harmful_context IN (0, 1)),
    not_relevant    BIGINT  NOT NULL CHECK (not_relevant IN (0, 1)),
    classification  TEXT    NOT NULL,
    positive        BIGINT  NOT NULL CHECK (positive IN (0, 1)),
    note            TEXT    NOT NULL DEFAULT '',
    decided_at      BIGINT  NOT NULL,
    applied_at      BIGINT ,
    superseded_by   BIGINT 
);
CREATE INDEX decisions_by_item ON decisions (item_id, id);
CREATE INDEX decisions_unapplied ON decisions (applied_at) WHERE applied_at IS NULL;

-- Bank entries a positive decision created; disabled (never deleted) when an appeal reverses it.
CREATE TABLE decision_bank_entries (
    decision_id  BIGINT  NOT NULL REFERENCES decisions (id),
    bank_id      BIGINT  NOT NULL,
    entry_id     BIGINT  NOT NULL,
    media_sha256 BYTEA    NOT NULL,
    signal_type  TEXT    NOT NULL,
    disabled_at  BIGINT ,
    PRIMARY KEY (decision_id, bank_id, entry_id, media_sha256)
);

-- Media decided not relevant: never queued again.
CREATE TABLE known_negatives (
    media_sha256 BYTEA    PRIMARY KEY,
    md5          BYTEA    NOT NULL,
    sha1         BYTEA    NOT NULL,
    pdq          BYTEA,
    decision_id  BIGINT  NOT NULL REFERENCES decisions (id),
    recorded_at  BIGINT  NOT NULL
);

-- Matches whose decision an appeal reversed: the notice pipeline withdraws their notices.
CREATE TABLE match_withdrawals (
    match_id     BIGINT  PRIMARY KEY REFERENCES matches (id),
    decision_id  BIGINT  NOT NULL REFERENCES decisions (id),
    withdrawn_at BIGINT  NOT NULL
);

-- Encrypted bytes of queued media and of their blurred grayscale thumbnail (made once,
-- sealed like the bytes); both are NULL once purged.
CREATE TABLE vault (
    media_sha256 BYTEA    PRIMARY KEY,
    ciphertext   BYTEA,
    thumbnail    BYTEA,
    size         BIGINT  NOT NULL,
    stored_at    BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    purged_at    BIGINT ,
    purge_reason TEXT
);
CREATE INDEX vault_by_expiry ON vault (expires_at) WHERE purged_at IS NULL;

-- Append-only, each row chained to the previous by hash; audit_head holds the last one so
-- a deleted tail is detected too.
CREATE TABLE audit_log (
    seq       BIGINT  PRIMARY KEY,
    at        BIGINT  NOT NULL,
    user_id   BIGINT ,
    actor     TEXT    NOT NULL,
    hotline   TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    prev_hash BYTEA    NOT NULL,
    hash      BYTEA    NOT NULL
);
CREATE INDEX audit_by_hotline ON audit_log (hotline, seq);

CREATE TABLE audit_head (
    id   BIGINT  PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash BYTEA    NOT NULL
);
