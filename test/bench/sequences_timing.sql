-- test/bench/sequences_timing.sql
--	Timers of the follow-up sequence benchmark (sequences_bench.sh): each
--	returns "seconds count", seconds of server time (clock_timestamp()
--	around the statement, so psql and the connection are not counted).

CREATE SCHEMA IF NOT EXISTS seq_bench;

-- one run_sequences(now): seconds and the number of messages written
CREATE OR REPLACE FUNCTION seq_bench.time_run(now timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n int;
BEGIN
	n := scoring.run_sequences(now);
	RETURN format('%s %s', extract(epoch FROM clock_timestamp() - t0), n);
END;
$$;

-- the parts of a run on their own: the context of every due lead, and
-- the two templates of step 0 rendered from it
CREATE OR REPLACE FUNCTION seq_bench.time_context(now timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
BEGIN
	SELECT count(scoring.lead_context(e.lead_id)) INTO n
	  FROM scoring.enrollment e WHERE e.state = 'active' AND e.next_at <= now;
	RETURN format('%s %s', extract(epoch FROM clock_timestamp() - t0), n);
END;
$$;

CREATE OR REPLACE FUNCTION seq_bench.time_render(now timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	n bigint;
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS ctx AS
	SELECT e.lead_id, scoring.lead_context(e.lead_id) AS c
	  FROM scoring.enrollment e WHERE e.state = 'active' AND e.next_at <= now;
	t0 := clock_timestamp();
	SELECT count(scoring.render(s.steps -> 0 ->> 'subject', x.c)
				 || scoring.render(s.steps -> 0 ->> 'body', x.c)) INTO n
	  FROM ctx x, scoring.sequence s WHERE s.name = 'bench';
	RETURN format('%s %s', extract(epoch FROM clock_timestamp() - t0), n);
END;
$$;
