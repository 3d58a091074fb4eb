-- test/bench/common.sql
--	What every benchmark needs: the extension and a timer.
--
-- Run once on a fresh database by run.sh.

CREATE EXTENSION IF NOT EXISTS scoring;
CREATE SCHEMA IF NOT EXISTS bench;

-- Seconds the server spends running one statement: clock_timestamp()
-- around EXECUTE, so psql's connection and the client are not counted.
CREATE OR REPLACE FUNCTION bench.seconds(stmt text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE stmt;
	RETURN extract(epoch FROM clock_timestamp() - t0);
END;
$$;
