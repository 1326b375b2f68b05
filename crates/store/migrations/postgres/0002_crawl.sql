-- The crawler (issue 5, video in issue 9): what the crawl worker needs beyond 0001.

-- Where in a video a match was seen: milliseconds from its start to the first matching frame
-- (a known image in a frame, or the first frame matching a known video). NULL for still
-- images and whole-file matches.
ALTER TABLE matches ADD COLUMN frame_ms BIGINT;
