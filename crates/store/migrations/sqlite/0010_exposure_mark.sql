-- Review items' exposure follows their media's later sightings (docs/review.md, "The
-- queue"): each intake recounts the undecided items whose media were sighted above
-- counted_through, and only those whose number of sightings differs from sightings_counted.
-- A sighting's id is taken at insert but seen at commit; PostgreSQL commits out of id
-- order, so there the mark moves only to an id seen (seen_max, at seen_at) a grace period
-- before, and ids above it are looked at again until then. SQLite has one writer at a
-- time: its ids commit in order and the mark moves to the highest id looked at.
-- Starting at 0 (sightings_counted 0) recounts every item sighted at all, once, the ones
-- left stale before this version included.
CREATE TABLE review_exposure_mark (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    counted_through INTEGER NOT NULL,
    seen_max        INTEGER NOT NULL,
    seen_at         INTEGER NOT NULL
);
INSERT INTO review_exposure_mark (id, counted_through, seen_max, seen_at)
    SELECT 1, 0, COALESCE(MAX(id), 0), 0 FROM sightings;
ALTER TABLE review_items ADD COLUMN sightings_counted INTEGER NOT NULL DEFAULT 0;
