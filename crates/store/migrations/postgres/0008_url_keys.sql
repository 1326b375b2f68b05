-- Every URL's key (`urls.url_hash`) becomes the first 8 bytes of the SHA-256 of its origin
-- followed by the first 24 of the SHA-256 of the whole URL, so that a host's URLs sit
-- together in the unique index. SQL cannot compute the new keys on SQLite, so the migration
-- runner rewrites them in this migration's transaction, after this statement
-- (crates/store/src/migrate.rs, `Step::RekeyUrls`).
UPDATE urls SET url_hash = url_hash WHERE 0 = 1;
