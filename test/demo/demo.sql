/*
 * test/demo/demo.sql
 *		What a head of sales looks at, on the data of generate.sql.
 *
 *	psql -v now='2026-11-15 12:00+03' -f test/demo/demo.sql
 *
 * Trains a model on the 12 closed months before the month of :now,
 * rescores, and reports: the model's metrics, the priority mix of this
 * month's open leads, the top 10 leads and why, expected profit by channel
 * and by shop, and the "e-mail vs company" lesson.
 */

\set ON_ERROR_STOP on
\if :{?now}
\else
\set now '2026-11-15 12:00+03'
\endif

SET TimeZone = 'Europe/Moscow';
\pset footer off
\pset null '-'

SELECT date_trunc('month', :'now'::timestamptz) AS month_start,
	   date_trunc('month', :'now'::timestamptz) - interval '12 months' AS train_since,
	   to_char(date_trunc('month', :'now'::timestamptz), 'YYYY-MM') AS month_name
\gset

\echo
\echo '=== 1. The model: trained on the 12 closed months before' :month_name
\echo

SELECT scoring.train(:'train_since', :'month_start', '{"seed": 42}') AS model_id;

SELECT model_id, n_rows, n_won,
	   to_char(train_since, 'YYYY-MM-DD') || ' .. ' || to_char(train_until, 'YYYY-MM-DD') AS "window"
  FROM scoring.model
 WHERE active;

-- its metrics, one a line (nested objects flattened, long arrays counted)
WITH RECURSIVE m(path, value) AS (
	SELECT e.key, e.value
	  FROM scoring.model, jsonb_each(metrics) AS e
	 WHERE active
	UNION ALL
	SELECT m.path || '.' || e.key, e.value
	  FROM m, jsonb_each(m.value) AS e
	 WHERE jsonb_typeof(m.value) = 'object'
)
SELECT path AS metric,
	   CASE WHEN jsonb_typeof(value) = 'array' AND jsonb_array_length(value) > 5
			THEN format('[%s items]', jsonb_array_length(value))
			ELSE value #>> '{}' END AS value
  FROM m
 WHERE jsonb_typeof(value) <> 'object'
 ORDER BY path;

-- calibration by decile on the held-out leads, when train() reports it
SELECT coalesce(jsonb_typeof(metrics #> '{holdout,calibration}') = 'array', false) AS has_calibration
  FROM scoring.model
 WHERE active
\gset
\if :has_calibration
\echo '    calibration on the held-out leads (mean p_win against the win rate, by decile):'
SELECT CASE WHEN jsonb_typeof(c->'decile') = 'number' THEN (c->>'decile')::numeric END AS decile,
	   CASE WHEN jsonb_typeof(c->'leads') = 'number' THEN (c->>'leads')::numeric END AS leads,
	   CASE WHEN jsonb_typeof(c->'mean_p') = 'number' THEN (c->>'mean_p')::numeric END AS "mean p_win",
	   CASE WHEN jsonb_typeof(c->'win_rate') = 'number' THEN (c->>'win_rate')::numeric END AS "win rate"
  FROM scoring.model, jsonb_array_elements(metrics #> '{holdout,calibration}') AS c
 WHERE active;
\endif

-- open leads: the everyday call
SELECT scoring.rescore() AS open_leads_rescored;
-- and the history too, so that section 5 can compare the model's p_win
-- with what actually happened
SELECT scoring.rescore(false) AS all_leads_rescored;

/* open leads of the current month */
CREATE TEMP VIEW demo_open AS
SELECT l.*, c.kind, c.name AS client_name
  FROM scoring.lead l
  LEFT JOIN scoring.client c USING (client_id)
 WHERE l.created_at >= :'month_start'
   AND l.status IN ('draft', 'new', 'queued', 'assigned', 'auto', 'accepted');

/* closed leads of the training window */
CREATE TEMP VIEW demo_history AS
SELECT l.*, c.kind
  FROM scoring.lead l
  LEFT JOIN scoring.client c USING (client_id)
 WHERE l.created_at >= :'train_since' AND l.created_at < :'month_start'
   AND l.status IN ('won', 'lost');

\echo
\echo '=== 2. Priority mix of the open leads of' :month_name
\echo

SELECT coalesce(priority::text, CASE WHEN GROUPING(priority) = 1 THEN 'all' END) AS priority,
	   count(*) AS leads,
	   round(100.0 * count(*) / (SELECT count(*) FROM demo_open), 1) AS "share %",
	   to_char(sum(expected_profit), 'FM999G999G999G999G999G990') AS "Σ expected profit",
	   round(avg(p_win)::numeric, 3) AS "mean p_win",
	   count(*) FILTER (WHERE cardinality(score_flags) > 0) AS flagged
  FROM demo_open
 GROUP BY ROLLUP (priority)
 ORDER BY GROUPING(priority), priority NULLS LAST;

\echo
\echo '=== 3. Top 10 open leads by expected profit, and why'
\echo

SELECT l.lead_id,
	   to_char(l.created_at, 'MM-DD HH24:MI') AS created,
	   coalesce(l.client_name, '(no client)') AS client,
	   l.category, l.brand, l.channel,
	   to_char(l.budget, 'FM999G999G999G999G999G990') AS budget,
	   round(l.p_win::numeric, 3) AS p_win,
	   to_char(l.expected_profit, 'FM999G999G999G999G999G990') AS expected_profit,
	   l.priority,
	   (SELECT string_agg(format('%s=%s %s', e.feature, coalesce(e.value, ''),
								 to_char(e.contribution, 'SG0.00')),
						  '; ' ORDER BY abs(e.contribution) DESC)
		  FROM (SELECT * FROM scoring.explain(l.lead_id) AS x
				 WHERE x.feature !~* 'intercept|bias'
				 ORDER BY abs(x.contribution) DESC
				 LIMIT 3) AS e) AS top_3_reasons
  FROM demo_open l
 ORDER BY l.expected_profit DESC NULLS LAST, l.lead_id
 LIMIT 10;

\echo
\echo '=== 4. Expected profit by channel and by shop'
\echo '    (open leads of' :month_name 'against the 12 months of the training window)'
\echo

\set dim channel
\ir by_dimension.sql
\set dim shop
\ir by_dimension.sql

\echo
\echo '=== 5. The e-mail vs company lesson (closed leads of the training window)'
\echo '    Almost every company writes by e-mail. Points for "e-mail" plus points'
\echo '    for "company" count the same thing twice: the "naive points" column'
\echo '    multiplies the two lifts, as a per-feature point system does.'
\echo '    The model (mean p_win) follows the actual win rate instead.'
\echo

WITH h AS (
	SELECT coalesce(kind, '(none)') AS kind,
		   CASE WHEN channel = 'email' THEN 'email' ELSE 'other' END AS via,
		   (status = 'won')::int AS won, p_win
	  FROM demo_history
), base AS (
	SELECT avg(won) AS r FROM h
), by_kind AS (
	SELECT kind, avg(won) AS r FROM h GROUP BY kind
), by_via AS (
	SELECT via, avg(won) AS r FROM h GROUP BY via
)
SELECT h.kind, h.via,
	   count(*) AS leads,
	   round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY h.kind), 1) AS "% of kind",
	   round(avg(h.won), 3) AS "actual win rate",
	   round(avg(h.p_win)::numeric, 3) AS "mean p_win",
	   round(least(1, k.r * v.r / nullif(b.r, 0)), 3) AS "naive points"
  FROM h
  JOIN by_kind k USING (kind)
  JOIN by_via v USING (via)
  CROSS JOIN base b
 GROUP BY h.kind, h.via, k.r, v.r, b.r
 ORDER BY h.kind DESC, h.via;

\echo
\echo '    Calibration: the sum of p_win against the leads actually won'
\echo

SELECT to_char(date_trunc('month', created_at), 'YYYY-MM') AS month,
	   count(*) AS leads,
	   sum((status = 'won')::int) AS won,
	   round(sum(p_win)::numeric) AS "Σ p_win",
	   round(100 * sum(p_win)::numeric / nullif(sum((status = 'won')::int), 0), 1) AS "Σ p_win / won %"
  FROM demo_history
 GROUP BY 1
 ORDER BY 1;
