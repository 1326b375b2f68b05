-- What came of a report counts the pages crawled from it too (docs/reports.md): every URL
-- whose urls.report_id is the report (the URL reported, its redirect targets, and the pages
-- and media reached from them by links, which inherit it), read through this index.
CREATE INDEX urls_by_report ON urls (report_id);
-- A report's public reference (docs/reports.md, "References"): random, unguessable, shown
-- to a public reporter instead of the sequential id, which would tell how many reports the
-- hotline gets. Rows recorded before this version get one in the same migration (written
-- by the runner, which has the randomness SQLite lacks); NULL never stays.
ALTER TABLE reports ADD COLUMN reference TEXT;
CREATE UNIQUE INDEX reports_by_reference ON reports (reference);
