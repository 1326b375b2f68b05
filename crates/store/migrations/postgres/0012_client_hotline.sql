-- API clients bound to one hotline (tenant isolation, docs/server.md "API clients"): such a
-- client submits reports only to its hotline and reads only its hotline's reports, notices
-- and removal statistics. NULL: a platform client, which sees every hotline (every client
-- recorded before this version). The code is checked against hotlines when a client is added.
ALTER TABLE api_clients ADD COLUMN hotline TEXT;
