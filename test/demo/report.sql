/*
 * test/demo/report.sql
 *		A one-page HTML report from the BI views: written to stdout.
 *
 *	psql -X -q -At -v ON_ERROR_STOP=1 -d scoring_demo -f test/demo/report.sql > report.html
 *
 * Three inline SVG charts drawn with SQL (string_agg of <rect>/<text> with
 * computed coordinates), the tables beneath them; nothing external (no
 * script, font, stylesheet or image from anywhere):
 *	1. expected (forecast) vs won profit by month	(scoring.forecast_monthly)
 *	2. priority mix by channel, latest month		(scoring.marketing_roi)
 *	3. plan attainment by manager, latest month		(scoring.manager_plan)
 * Reads only the views, so a role given scoring.grant_bi() can run it
 * (it creates one temporary function, for HTML escaping).
 */

\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.h(t anyelement) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT replace(replace(replace(replace(coalesce(t::text, ''), '&', '&amp;'),
								   '<', '&lt;'), '>', '&gt;'), '"', '&quot;')
$$;
CREATE FUNCTION pg_temp.money(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN v IS NULL THEN '-' ELSE to_char(round(v), 'FM999G999G999G999G990') END $$;
CREATE FUNCTION pg_temp.pct(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN v IS NULL THEN '-' ELSE to_char(v * 100, 'FM99990.0') || '%' END $$;

-- the months the report is about
CREATE TEMP TABLE r_fm AS
SELECT * FROM scoring.forecast_monthly ORDER BY month DESC LIMIT 15;
CREATE TEMP TABLE r_mix AS
SELECT r.channel, sum(r.leads) AS leads, sum(r.spend) AS spend,
	   sum(r.expected_profit) AS expected_profit, sum(r.won_profit) AS won_profit,
	   ARRAY[sum(r.leads_by_priority[1]), sum(r.leads_by_priority[2]),
			 sum(r.leads_by_priority[3]), sum(r.leads_by_priority[4]),
			 sum(r.leads_by_priority[5])] AS prio
  FROM scoring.marketing_roi r
 WHERE r.month = (SELECT max(month) FROM scoring.marketing_roi WHERE leads > 0)
 GROUP BY r.channel;
-- the per-channel priority counts, summed over shops
CREATE TEMP TABLE r_mix2 AS
SELECT r.month, r.channel, k AS priority, sum(x)::bigint AS n
  FROM scoring.marketing_roi r
  CROSS JOIN LATERAL unnest(r.leads_by_priority) WITH ORDINALITY AS u(x, k)
 WHERE r.month = (SELECT max(month) FROM scoring.marketing_roi WHERE leads > 0)
 GROUP BY 1, 2, 3;
CREATE TEMP TABLE r_plan AS
SELECT * FROM scoring.manager_plan
 WHERE month = (SELECT max(month) FROM scoring.manager_plan);

-- head
SELECT '<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Scoring: forecast, marketing and plans</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1140px; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 17px; margin: 26px 0 6px 0; }
p.note { color: #666; font-size: 12px; margin: 2px 0 8px 0; }
table { border-collapse: collapse; font-size: 12px; margin-top: 8px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
svg { display: block; border: 1px solid #ddd; background: #fff; }
svg text { font-family: sans-serif; }
</style></head><body>
<h1>Scoring: forecast, marketing and plans</h1>
<p class="note">Drawn from scoring.forecast_monthly, scoring.marketing_roi and scoring.manager_plan at '
	   || pg_temp.h(to_char(now(), 'YYYY-MM-DD HH24:MI TZ')) || ' (months in time zone '
	   || pg_temp.h(current_setting('TimeZone')) || ').</p>';

-- 1. expected vs won by month
\echo '<h2>1. Forecast (expected profit) vs won profit by month</h2>'
\echo '<p class="note">Expected profit is the score frozen at routing; accuracy = won / expected once every lead of the month is closed.</p>'
WITH d AS (
	SELECT row_number() OVER (ORDER BY month) - 1 AS i, count(*) OVER () AS n, *,
		   greatest(max(expected_profit) OVER (), max(won_profit) OVER (), 1) AS top
	  FROM r_fm
), g AS (
	SELECT *, 1040.0 / greatest(n, 1) AS slot FROM d
)
SELECT '<svg id="chart-forecast" width="1100" height="330" viewBox="0 0 1100 330" role="img">'
	|| '<title>Expected vs won profit by month</title>'
	|| '<line x1="60" y1="280" x2="1090" y2="280" stroke="#888"/>'
	|| '<line x1="60" y1="20" x2="60" y2="280" stroke="#888"/>'
	|| coalesce((SELECT '<text x="56" y="26" font-size="11" text-anchor="end">' || pg_temp.money(max(top)) || '</text>'
				 FROM g), '')
	|| '<text x="56" y="284" font-size="11" text-anchor="end">0</text>'
	|| '<rect x="880" y="6" width="12" height="12" fill="#4a7ebb"/><text x="896" y="16" font-size="12">expected</text>'
	|| '<rect x="970" y="6" width="12" height="12" fill="#5cb85c"/><text x="986" y="16" font-size="12">won</text>'
	|| coalesce(string_agg(
		format('<rect class="bar-expected" x="%s" y="%s" width="%s" height="%s" fill="#4a7ebb"><title>%s expected %s</title></rect>',
			   round(62 + i * slot + slot * 0.1, 1), round(280 - 260 * expected_profit / top, 1),
			   round(slot * 0.38, 1), round(260 * expected_profit / top, 1),
			   to_char(month, 'YYYY-MM'), pg_temp.money(expected_profit))
		|| format('<rect class="bar-won" x="%s" y="%s" width="%s" height="%s" fill="#5cb85c"><title>%s won %s</title></rect>',
			   round(62 + i * slot + slot * 0.5, 1), round(280 - 260 * won_profit / top, 1),
			   round(slot * 0.38, 1), round(260 * won_profit / top, 1),
			   to_char(month, 'YYYY-MM'), pg_temp.money(won_profit))
		|| format('<text x="%s" y="296" font-size="11" text-anchor="middle">%s</text>',
			   round(62 + i * slot + slot * 0.5, 1), to_char(month, 'YYYY-MM'))
		|| CASE WHEN accuracy IS NOT NULL THEN
			   format('<text x="%s" y="312" font-size="10" fill="#666" text-anchor="middle">%s</text>',
					  round(62 + i * slot + slot * 0.5, 1), pg_temp.pct(accuracy)) ELSE '' END,
		'' ORDER BY i), '<text x="500" y="150" font-size="14">no leads</text>')
	|| '</svg>'
  FROM g;
SELECT '<table id="table-forecast"><tr><th class="l">month</th><th>leads</th><th>expected</th><th>won</th>'
	|| '<th>open leads</th><th>open expected</th><th>accuracy</th><th>error</th></tr>'
	|| coalesce(string_agg(format('<tr><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			to_char(month, 'YYYY-MM'), leads, pg_temp.money(expected_profit),
			pg_temp.money(won_profit), open_leads, pg_temp.money(open_expected_profit),
			pg_temp.pct(accuracy), pg_temp.pct(error)), '' ORDER BY month), '')
	|| '</table>'
  FROM r_fm;

-- 2. priority mix by channel
SELECT '<h2>2. Priority mix by channel, ' || coalesce(to_char(max(month), 'YYYY-MM'), 'no month') || '</h2>'
	|| '<p class="note">Leads of each priority (1: the fattest, 5: automation only) per channel, all shops together.</p>'
  FROM r_mix2;
WITH c AS (
	SELECT channel, sum(n) AS total, row_number() OVER (ORDER BY sum(n) DESC, channel) - 1 AS i,
		   count(*) OVER () AS nc
	  FROM r_mix2 GROUP BY channel
), s AS (
	SELECT c.i, c.nc, c.channel, c.total, m.priority, m.n,
		   coalesce(sum(m.n) OVER (PARTITION BY c.channel ORDER BY m.priority
								   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS below,
		   greatest((SELECT max(total) FROM c), 1) AS top,
		   1040.0 / greatest(c.nc, 1) AS slot
	  FROM c JOIN r_mix2 m USING (channel)
)
SELECT '<svg id="chart-priority" width="1100" height="330" viewBox="0 0 1100 330" role="img">'
	|| '<title>Priority mix by channel</title>'
	|| '<line x1="60" y1="280" x2="1090" y2="280" stroke="#888"/>'
	|| '<line x1="60" y1="20" x2="60" y2="280" stroke="#888"/>'
	|| coalesce((SELECT '<text x="56" y="26" font-size="11" text-anchor="end">' || max(top) || '</text>' FROM s), '')
	|| '<text x="56" y="284" font-size="11" text-anchor="end">0</text>'
	|| (SELECT string_agg(format('<rect x="%s" y="6" width="12" height="12" fill="%s"/><text x="%s" y="16" font-size="12">P%s</text>',
								 760 + k * 60, (ARRAY['#c0392b','#e67e22','#f1c40f','#3498db','#95a5a6'])[k],
								 776 + k * 60, k), '' ORDER BY k)
		  FROM generate_series(1, 5) k)
	|| coalesce(string_agg(
		format('<rect class="bar-priority" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s P%s: %s</title></rect>',
			   round(62 + i * slot + slot * 0.25, 1), round(280 - 260 * (below + n) / top, 1),
			   round(slot * 0.5, 1), round(260 * n / top, 1),
			   (ARRAY['#c0392b','#e67e22','#f1c40f','#3498db','#95a5a6'])[priority],
			   pg_temp.h(channel), priority, n)
		|| CASE WHEN priority = 5 THEN
			   format('<text x="%s" y="296" font-size="11" text-anchor="middle">%s</text>',
					  round(62 + i * slot + slot * 0.5, 1), pg_temp.h(coalesce(channel, '(none)')))
			|| format('<text x="%s" y="%s" font-size="10" text-anchor="middle">%s</text>',
					  round(62 + i * slot + slot * 0.5, 1), round(276 - 260 * total / top, 1), total)
		   ELSE '' END,
		'' ORDER BY i, priority), '<text x="500" y="150" font-size="14">no leads</text>')
	|| '</svg>'
  FROM s;
SELECT '<table id="table-priority"><tr><th class="l">channel</th><th>leads</th><th>P1</th><th>P2</th><th>P3</th><th>P4</th><th>P5</th>'
	|| '<th>spend</th><th>expected</th><th>won</th></tr>'
	|| coalesce(string_agg(format('<tr><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			pg_temp.h(coalesce(channel, '(none)')), leads, prio[1], prio[2], prio[3], prio[4], prio[5],
			pg_temp.money(spend), pg_temp.money(expected_profit), pg_temp.money(won_profit)),
			'' ORDER BY leads DESC, channel), '')
	|| '</table>'
  FROM r_mix;

-- 3. plan attainment by manager
SELECT '<h2>3. Plan attainment by manager, ' || coalesce(to_char(max(month), 'YYYY-MM'), 'no month') || '</h2>'
	|| '<p class="note">Plan = expected profit of the leads the manager received; attainment = won / plan; the line is 100%.</p>'
  FROM r_plan;
WITH d AS (
	SELECT row_number() OVER (ORDER BY manager_id) - 1 AS i, count(*) OVER () AS n, *,
		   greatest(max(attainment) OVER (), 1.2) AS top
	  FROM r_plan
), g AS (
	SELECT *, 1040.0 / greatest(n, 1) AS slot FROM d
)
SELECT '<svg id="chart-attainment" width="1100" height="330" viewBox="0 0 1100 330" role="img">'
	|| '<title>Plan attainment by manager</title>'
	|| '<line x1="60" y1="280" x2="1090" y2="280" stroke="#888"/>'
	|| '<line x1="60" y1="20" x2="60" y2="280" stroke="#888"/>'
	|| '<text x="56" y="284" font-size="11" text-anchor="end">0%</text>'
	|| coalesce((SELECT format('<line x1="60" y1="%s" x2="1090" y2="%s" stroke="#c0392b" stroke-dasharray="4 3"/>'
							   || '<text x="56" y="%s" font-size="11" text-anchor="end">100%%</text>',
							   round(280 - 260 / max(top), 1), round(280 - 260 / max(top), 1),
							   round(284 - 260 / max(top), 1)) FROM g), '')
	|| coalesce(string_agg(
		format('<rect class="bar-attainment" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s of %s</title></rect>',
			   round(62 + i * slot + slot * 0.2, 1), round(280 - 260 * coalesce(attainment, 0) / top, 1),
			   round(slot * 0.6, 1), round(260 * coalesce(attainment, 0) / top, 1),
			   CASE WHEN attainment >= 1 THEN '#5cb85c' ELSE '#4a7ebb' END,
			   pg_temp.h(coalesce(full_name, manager_id::text)), pg_temp.money(won_profit), pg_temp.money(plan))
		|| format('<text x="%s" y="296" font-size="11" text-anchor="middle">%s</text>',
				  round(62 + i * slot + slot * 0.5, 1), pg_temp.h(coalesce(full_name, '#' || manager_id)))
		|| format('<text x="%s" y="%s" font-size="10" text-anchor="middle">%s</text>',
				  round(62 + i * slot + slot * 0.5, 1),
				  round(276 - 260 * coalesce(attainment, 0) / top, 1), pg_temp.pct(attainment)),
		'' ORDER BY i), '<text x="500" y="150" font-size="14">no leads assigned to managers yet</text>')
	|| '</svg>'
  FROM g;
SELECT '<table id="table-plan"><tr><th>id</th><th class="l">manager</th><th>leads</th><th>plan</th><th>won</th><th>attainment</th><th>bonus coefficient</th></tr>'
	|| coalesce(string_agg(format('<tr><td>%s</td><td class="l">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			manager_id, pg_temp.h(full_name), leads, pg_temp.money(plan), pg_temp.money(won_profit),
			pg_temp.pct(attainment), coalesce(bonus_coefficient::text, '-')), '' ORDER BY manager_id), '')
	|| '</table>'
  FROM r_plan;

\echo '</body></html>'
