/*
 * test/bench/views_proposal_timing.sql
 *		The same three queries through the proposal of views_proposal.sql,
 *		and one month of forecast_monthly as a range scan on created_at
 *		(what an index-friendly function forecast_month(m) would run).
 */
\set ON_ERROR_STOP on
SET TimeZone = 'Europe/Moscow';
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
SELECT 'aggregate: forecast_monthly, one month' || E'\t' ||
	   pg_temp.ms(format('SELECT * FROM bench.forecast_monthly WHERE month = %L', :'month'));
SELECT 'aggregate: forecast_monthly, all months' || E'\t' ||
	   pg_temp.ms('SELECT * FROM bench.forecast_monthly');
SELECT 'aggregate: manager_plan, one month' || E'\t' ||
	   pg_temp.ms(format('SELECT * FROM bench.manager_plan WHERE month = %L', :'month'));
SELECT 'range scan: one month of forecast' || E'\t' ||
	   pg_temp.ms(format($q$SELECT count(*), sum(forecast_profit),
			sum(won_profit) FILTER (WHERE status = 'won'),
			count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused'))
		  FROM scoring.lead WHERE created_at >= %L::date AND created_at < %L::date + interval '1 month'$q$,
		  :'month', :'month'));
