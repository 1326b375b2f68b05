-- A report follows its URL's redirects (docs/crawling.md, "Reports"): a reported URL that
-- redirects links its queued reports to the target too, and they settle by the end of the
-- chain. hops: redirects followed from the reported URL to this one (0 for the URL as
-- reported), to end a chain longer than the crawler's redirect limit.
ALTER TABLE report_urls ADD COLUMN hops BIGINT NOT NULL DEFAULT 0;
-- Why a report was rejected (the URL's error or skip, a redirect not followed, a loop);
-- NULL otherwise, and for reports settled before this version.
ALTER TABLE reports ADD COLUMN reason TEXT;
