-- Removal notices (issue 7): what is to be removed and who hosts it (notice_items, with the
-- attribution that named the provider), the notices sent about them (notices,
-- notice_entries), every re-check (notice_checks), the timeline (notice_events) and the
-- health of abuse contacts (notice_contacts). Times are Unix milliseconds.

-- One URL serving matched media, from first notice until verified removal. A re-upload opens
-- a new item pointing at the removed one (reupload_of). Hashes are lowercase hex.
CREATE TABLE notice_items (
    id                 INTEGER PRIMARY KEY,
    sighting_id        INTEGER REFERENCES sightings (id),
    url                TEXT    NOT NULL,
    host               TEXT    NOT NULL,
    sha256             TEXT    NOT NULL,
    md5                TEXT    NOT NULL,
    sha1               TEXT    NOT NULL,
    pdq                TEXT,
    media_kind         TEXT    NOT NULL,
    classification     TEXT    NOT NULL,
    first_seen_at      INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    provider_key       TEXT    NOT NULL,
    provider_name      TEXT    NOT NULL,
    asn                INTEGER,
    prefix             TEXT,
    country            TEXT,
    hotline            TEXT    NOT NULL,
    via_cdn            TEXT,
    method             TEXT    NOT NULL,
    confidence_pct     INTEGER NOT NULL CHECK (confidence_pct BETWEEN 0 AND 100),
    contacts           TEXT    NOT NULL,
    upstream_contact   TEXT,
    state              TEXT    NOT NULL DEFAULT 'open'
                       CHECK (state IN ('open', 'removed', 'withdrawn')),
    removed_at         INTEGER,
    removal_kind       TEXT,
    pending_outcome    TEXT,
    pending_since      INTEGER,
    next_check_at      INTEGER,
    checks_done        INTEGER NOT NULL DEFAULT 0,
    notices_sent       INTEGER NOT NULL DEFAULT 0,
    unanswered         INTEGER NOT NULL DEFAULT 0,
    escalation_level   INTEGER NOT NULL DEFAULT 0,
    notice_due_at      INTEGER,
    pending_notice_id  INTEGER,
    last_notice_at     INTEGER,
    reupload_of        INTEGER REFERENCES notice_items (id),
    withdrawn_reason   TEXT
);
CREATE UNIQUE INDEX notice_items_open_url ON notice_items (url) WHERE state = 'open';
CREATE INDEX notice_items_by_sighting ON notice_items (sighting_id);
CREATE INDEX notice_items_due_check ON notice_items (state, next_check_at);
CREATE INDEX notice_items_due_notice ON notice_items (state, notice_due_at);
CREATE INDEX notice_items_by_sha256 ON notice_items (sha256);

-- One message to one provider contact about a batch of items. idempotency_key is derived
-- from the provider, the kind and the items, so composing twice yields one row; it is also
-- the Message-ID and the webhook's Idempotency-Key. State: queued → sending → committing →
-- sent; a worker that dies in 'sending' left nothing on the wire (requeued); one that dies
-- in 'committing' may have delivered it, so the notice becomes 'uncertain' and is never
-- sent again (at most once; the item's next re-notice follows its usual schedule).
-- A 'withdrawal' retracts earlier notices to the same recipient about items an appeal
-- withdrew; its entries name those items, and it never counts as a notice about them.
CREATE TABLE notices (
    id               INTEGER PRIMARY KEY,
    report_id        TEXT    NOT NULL UNIQUE,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    provider_key     TEXT    NOT NULL,
    provider_name    TEXT    NOT NULL,
    hotline          TEXT    NOT NULL,
    kind             TEXT    NOT NULL
                     CHECK (kind IN ('initial', 'renotice', 'escalation', 'reupload',
                                     'withdrawal')),
    escalation_step  TEXT,
    via_cdn          TEXT,
    channel          TEXT    NOT NULL CHECK (channel IN ('smtp', 'webhook')),
    recipient        TEXT    NOT NULL,
    contacts         TEXT    NOT NULL,
    contact_index    INTEGER NOT NULL DEFAULT 0,
    language         TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body_text        TEXT    NOT NULL,
    body_html        TEXT    NOT NULL,
    xarf             TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'sending', 'committing', 'sent', 'uncertain',
                                      'failed', 'withdrawn')),
    lease_owner      TEXT,
    lease_until      INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    response         TEXT    CHECK (response IN ('acknowledged', 'disputed')),
    response_at      INTEGER,
    response_note    TEXT,
    parent_id        INTEGER REFERENCES notices (id),
    test             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notices_due ON notices (state, next_attempt_at);
CREATE INDEX notices_by_provider ON notices (provider_key, created_at);

CREATE TABLE notice_entries (
    notice_id INTEGER NOT NULL REFERENCES notices (id),
    item_id   INTEGER NOT NULL REFERENCES notice_items (id),
    PRIMARY KEY (notice_id, item_id)
);
CREATE INDEX notice_entries_by_item ON notice_entries (item_id);

-- outcome: present, gone, changed, placeholder, nxdomain, refused, inconclusive.
CREATE TABLE notice_checks (
    id          INTEGER PRIMARY KEY,
    item_id     INTEGER NOT NULL REFERENCES notice_items (id),
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    http_status INTEGER,
    detail      TEXT    NOT NULL
);
CREATE INDEX notice_checks_by_item ON notice_checks (item_id, at);

-- The per-notice and per-item timeline: composed, attempt, sent, bounced, failed, retry,
-- next_contact, acknowledged, disputed, removed, escalated, reupload, withdrawn, retracted.
CREATE TABLE notice_events (
    id        INTEGER PRIMARY KEY,
    notice_id INTEGER REFERENCES notices (id),
    item_id   INTEGER REFERENCES notice_items (id),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX notice_events_by_notice ON notice_events (notice_id, id);
CREATE INDEX notice_events_by_item ON notice_events (item_id, id);

-- A contact that bounced permanently is skipped until dead_until.
CREATE TABLE notice_contacts (
    address    TEXT    PRIMARY KEY,
    failures   INTEGER NOT NULL DEFAULT 0,
    dead_until INTEGER,
    last_error TEXT,
    updated_at INTEGER NOT NULL
);
