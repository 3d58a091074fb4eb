/*
 * test/bench/views_load.sql
 *		:n generated leads over 3 years (2024-01 .. 2026-12, Moscow time) for
 *		the BI view benchmark (views_bench.sh), loaded in bulk.
 *
 * The scoring trigger is bypassed (session_replication_role replica: no
 * trigger of scoring.lead fires for an INSERT): the columns it would
 * compute (priority, forecast_profit, expected_profit) and the routing
 * ones (status, assignee_id) are set directly with generate_series
 * arithmetic.  40 managers; every lead but priority 5 has one; leads of the
 * last month are open, the others won (1 in 5) or lost.
 */
\set ON_ERROR_STOP on
SET TimeZone = 'Europe/Moscow';
INSERT INTO scoring.manager (manager_id, full_name, tier)
SELECT g, 'Manager ' || g, (ARRAY['junior', 'middle', 'senior'])[1 + g % 3]
  FROM generate_series(1, 40) g;
SET session_replication_role = replica;	-- no trigger fires; their modes stay
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, category, brand, budget,
						  status, priority, p_win, expected_profit, forecast_profit,
						  assignee_id, won_profit, closed_at)
SELECT i, t,
	   's' || (i % 12), (ARRAY['email', 'phone', 'whatsapp', 'form', 'chat'])[1 + i % 5],
	   'welding', 'B', b,
	   CASE WHEN t >= '2026-12-01 00:00+03' THEN 'assigned'
			WHEN i % 5 = 0 THEN 'won' ELSE 'lost' END,
	   1 + (i / 7) % 5, 0.2, b * 0.04, b * 0.04,
	   CASE WHEN 1 + (i / 7) % 5 < 5 THEN 1 + i % 40 END,
	   CASE WHEN t < '2026-12-01 00:00+03' AND i % 5 = 0 THEN b * 0.2 END,
	   CASE WHEN t < '2026-12-01 00:00+03' THEN t + interval '3 days' END
  FROM (SELECT i, timestamptz '2024-01-01 00:00+03'
					+ (i - 1) * (interval '1096 days' / :n) AS t,
			   (1000 + (i * 7919) % 200000)::numeric AS b
		  FROM generate_series(1::bigint, :n) AS i) g;
RESET session_replication_role;
SELECT setval(pg_get_serial_sequence('scoring.lead', 'lead_id'), :n);
