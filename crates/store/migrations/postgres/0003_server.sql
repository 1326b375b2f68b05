-- The server's API clients (issue 8): Shield-compatible HTTP Basic clients and native API keys
-- are the same thing, a name and a secret. Only the SHA-256 of the secret is stored: secrets
-- are 32 random bytes, so a fast hash is enough (no KDF needed per request).
-- Keep in step with ../sqlite/0003_server.sql.
CREATE TABLE api_clients (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    secret_sha256   TEXT    NOT NULL CHECK (length(secret_sha256) = 64),
    scopes          TEXT    NOT NULL DEFAULT '',
    rate_per_second BIGINT  CHECK (rate_per_second IS NULL OR rate_per_second > 0),
    created_at      BIGINT  NOT NULL,
    revoked_at      BIGINT
);
