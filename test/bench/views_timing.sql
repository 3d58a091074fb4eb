/*
 * test/bench/views_timing.sql
 *		One run of the three timed queries of views_bench.sh, each as
 *		EXPLAIN (ANALYZE, TIMING OFF): prints "name<TAB>ms" lines.
 *		-v month='2026-06-01'
 */
\set ON_ERROR_STOP on
SET TimeZone = 'Europe/Moscow';
CREATE TEMP TABLE IF NOT EXISTS t_plan (line text);
CREATE OR REPLACE FUNCTION pg_temp.ms(q text) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
	l text;
	ms numeric;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) ' || q LOOP
		IF l LIKE 'Execution Time:%' THEN
			ms := substring(l FROM 'Execution Time: ([0-9.]+)')::numeric;
		END IF;
	END LOOP;
	RETURN ms;
END;
$$;
SELECT 'forecast_monthly, one month' || E'\t' ||
	   pg_temp.ms(format('SELECT * FROM scoring.forecast_monthly WHERE month = %L', :'month'));
SELECT 'forecast_monthly, all months' || E'\t' ||
	   pg_temp.ms('SELECT * FROM scoring.forecast_monthly');
SELECT 'manager_plan, one month' || E'\t' ||
	   pg_temp.ms(format('SELECT * FROM scoring.manager_plan WHERE month = %L', :'month'));
