-- The key that signs notices' respond links when [notice] link_secret is not configured
-- (docs/notices.md, "Respond links"): random, made once by the first process that needs it
-- and read by every other (aranea notices run signs, aranea serve verifies), so processes
-- sharing a database agree without configuration. One row; the first insert wins.
CREATE TABLE notice_link_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key        BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Sites near a removal, crawled again for re-uploads (docs/notices.md, "Re-uploads"): when
-- each host's done pages were last queued again (the notice worker's clock), so a host is
-- revisited at most once per interval however many removals name it.
CREATE TABLE host_revisits (
    host_id      INTEGER PRIMARY KEY REFERENCES hosts (id),
    revisited_at INTEGER NOT NULL
);
-- The hosts served from the addresses around a removed copy's.
CREATE INDEX fetches_by_server_ip ON fetches (server_ip);
