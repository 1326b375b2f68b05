-- Which URL each report asked the crawler for. A URL is in the frontier once, but it can be
-- reported many times (by several hotlines): every report of it is linked here, and every
-- linked report still `queued` settles in the transaction that settles the URL (done:
-- `crawled`; failed or skipped: `rejected`). urls.report_id stays the first report that
-- led to the URL (what the review desk attributes its media to); a URL linked here always
-- has one.
CREATE TABLE report_urls (
    report_id BIGINT NOT NULL REFERENCES reports (id),
    url_id    BIGINT NOT NULL REFERENCES urls (id),
    PRIMARY KEY (report_id, url_id)
);
CREATE INDEX report_urls_by_url ON report_urls (url_id);

-- Reports queued before this version: the URL they were queued as carries their id.
INSERT INTO report_urls (report_id, url_id)
    SELECT report_id, id FROM urls WHERE report_id IS NOT NULL AND source = 'report';
