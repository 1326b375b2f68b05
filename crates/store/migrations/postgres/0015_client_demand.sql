-- Per-client rate limits held across a deployment (docs/server.md "API clients"): each server
-- process writes, about every second, how many requests per second each rate-limited client
-- asked of it lately (in thousandths), and reads the others' rows to take its share of the
-- client's rate. A row not written again for a few seconds is of a server that stopped and is
-- ignored, then deleted by the next server writing.
CREATE TABLE api_client_demand (
    client       TEXT NOT NULL,
    server       TEXT NOT NULL,
    demand_milli BIGINT NOT NULL,
    seen_at      BIGINT NOT NULL,
    PRIMARY KEY (client, server)
);
