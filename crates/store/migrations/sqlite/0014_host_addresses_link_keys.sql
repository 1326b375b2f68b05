-- Re-upload revisits at scale, and respond-link keys rotated out.
--
-- The server addresses each host was fetched from: one row per (address, host), written
-- with the fetch rows (`complete_leased_in!`), so the hosts served from a removed copy's
-- /24 are read from at most one row per host there (`Frontier::hosts_served_from`) instead
-- of every fetch ever made from those addresses. last_seen_at is moved at most once an
-- hour per row, so a busy host does not rewrite its row at every batch of fetches.
CREATE TABLE host_addresses (
    server_ip     TEXT    NOT NULL,
    host_id       INTEGER NOT NULL REFERENCES hosts (id),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (server_ip, host_id)
);
-- Every host address of the fetches recorded so far.
INSERT INTO host_addresses (server_ip, host_id, first_seen_at, last_seen_at)
SELECT f.server_ip, u.host_id, MIN(f.fetched_at), MAX(f.fetched_at)
FROM fetches f JOIN urls u ON u.id = f.url_id
WHERE f.server_ip IS NOT NULL
GROUP BY f.server_ip, u.host_id;
-- Only `hosts_served_from` read fetches by address; every fetch paid for this index.
DROP INDEX fetches_by_server_ip;

-- A host's done pages, those fetched longest ago first (`Frontier::revisit_host`): media
-- queued as embeds are never pages, so they stay out of the index and out of the scan.
CREATE INDEX urls_done_by_fetch ON urls (host_id, COALESCE(last_fetched_at, 0), id)
    WHERE state = 'done' AND source <> 'embed';

-- Respond-link keys rotated out (aranea notices rotate-link-key; docs/notices.md, "Respond
-- links"): notice_link_key keeps the current key, which signs; a key rotated out is kept
-- here from when it was replaced, and still verifies the links it signed until the longest
-- link lifetime has passed since (each link carries its own expiry too). The rotation drops
-- the keys rotated out longer ago than that.
CREATE TABLE notice_link_keys_retired (
    id         INTEGER PRIMARY KEY,
    key        BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER NOT NULL
);
