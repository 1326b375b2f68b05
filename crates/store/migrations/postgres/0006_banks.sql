-- The banks' journal when several machines share one PostgreSQL: every change to the hash
-- banks (bank created or changed, provenance, entry added or disabled, transaction frames) as
-- one row, in the order the single writer of the moment appended them. Each machine keeps its
-- own snapshot of the banks beside its data and replays the rows after it. Rows are never
-- changed or deleted: the journal is the banks' audit history.
-- On SQLite (one machine) the journal stays in files under DATA/banks, so the SQLite file of
-- this version holds no table.
CREATE TABLE bank_journal (
    seq         BIGINT PRIMARY KEY CHECK (seq > 0),
    record      TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- Names this database's journal, so a machine's snapshot of the banks is never replayed
-- against another database's journal (a snapshot is kept per identity).
CREATE TABLE bank_journal_identity (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    identity  TEXT    NOT NULL
);
INSERT INTO bank_journal_identity (identity) VALUES (md5(random()::text || clock_timestamp()::text));
