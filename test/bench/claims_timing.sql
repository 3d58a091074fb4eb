-- test/bench/claims_timing.sql
--	Server-side timers of the claims benchmark: seconds spent by the
--	server on one statement (clock_timestamp() around it), so that psql
--	and the connection are not counted.

CREATE SCHEMA IF NOT EXISTS claims_bench;

-- release_stale_claims(now): seconds and the number released
CREATE OR REPLACE FUNCTION claims_bench.time_release(now timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n int;
BEGIN
	n := scoring.release_stale_claims(now);
	RETURN extract(epoch FROM clock_timestamp() - t0) || ' ' || n;
END;
$$;

-- any query, all of its rows fetched: seconds and the number of rows
CREATE OR REPLACE FUNCTION claims_bench.time_query(stmt text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
BEGIN
	EXECUTE stmt;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN extract(epoch FROM clock_timestamp() - t0) || ' ' || n;
END;
$$;
