-- The crawler (issue 5, video in issue 9): what the crawl worker needs beyond 0001.

-- Where in a video a match was seen: milliseconds from its start to the first matching frame
-- (a known image in a frame, or the first frame matching a known video). NULL for still
-- images and whole-file matches.
ALTER TABLE matches ADD COLUMN frame_ms BIGINT;

-- Which page embeds which media URL (img, srcset, og:image, a link straight to a media file):
-- recorded when the page is mined, so that media fetched later, for whichever page queued it,
-- is sighted on every page that embeds it (pages on other hosts included).
CREATE TABLE embeds (
    media_url_id BIGINT NOT NULL REFERENCES urls (id),
    page_url_id  BIGINT NOT NULL REFERENCES urls (id),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (media_url_id, page_url_id)
);

-- What was seen at a URL (media_at_url, the embeds' sightings) without scanning every sighting.
CREATE INDEX sightings_by_url ON sightings (url_id);
