-- The banks' journal table of ../postgres/0006_banks.sql is for several machines sharing one
-- PostgreSQL. On SQLite (one machine) the banks' journal stays in files under DATA/banks, so
-- this version adds nothing here; it exists to keep the versions of both dialects in step.
SELECT 1;
