/*
 * test/demo/day.sql
 *		A working day of the sales department, after demo.sql.
 *
 *	psql -v day='2026-11-16' -f test/demo/day.sql
 *
 * Eight managers in three tiers (one a gas-power specialist, one a late
 * starter) come online, take calls, go to lunch and leave; leads arrive
 * all day and are routed as they come; managers accept most of them, and
 * what is not accepted in time goes to someone else.  Then the numbers a
 * head of sales looks at: loads, the forecast and how it held in past
 * months (backtest), plans, the automation chains and the free pool.
 * Deterministic: setseed, and scoring.now instead of the clock.
 */

\set ON_ERROR_STOP on
\if :{?day}
\else
\set day '2026-11-16'
\endif

SET TimeZone = 'Europe/Moscow';
\pset footer off
\pset null '-'

\echo
\echo '=== 6. A day of routing:' :day
\echo

INSERT INTO scoring.manager (manager_id, login, full_name, tier, skills,
							 shift_start, shift_end, lunch_start, lunch_end, time_zone)
VALUES (1, 'junior1', 'Junior 1', 'junior', '{}', '09:00', '18:00', '13:00', '14:00', 'Europe/Moscow'),
	   (2, 'junior2', 'Junior 2', 'junior', '{}', '09:00', '18:00', '13:30', '14:30', 'Europe/Moscow'),
	   (3, 'junior3', 'Junior 3 (starts at 12)', 'junior', '{}', '12:00', '21:00', '16:00', '16:30', 'Europe/Moscow'),
	   (4, 'middle1', 'Middle 1', 'middle', '{}', '09:00', '18:00', '12:30', '13:30', 'Europe/Moscow'),
	   (5, 'middle2', 'Middle 2', 'middle', '{}', '09:00', '18:00', '13:00', '14:00', 'Europe/Moscow'),
	   (6, 'middle3', 'Middle 3 (Yekaterinburg)', 'middle', '{}', '10:00', '19:00', '14:00', '15:00', 'Asia/Yekaterinburg'),
	   (7, 'senior1', 'Senior 1', 'senior', '{gas_power}', '09:00', '18:00', '13:00', '14:00', 'Europe/Moscow'),
	   (8, 'senior2', 'Senior 2', 'senior', '{}', '09:00', '18:00', '12:00', '13:00', 'Europe/Moscow');

-- gas power stations go to the specialist; the rest by budget
INSERT INTO scoring.route (position, condition, tier, required_skill) VALUES
	(10, '{"category": "gas_power_stations"}', 'senior', 'gas_power'),
	(20, '{"budget": {"lt": 100000}}', 'junior', NULL),
	(30, '{"budget": {"lt": 1000000}}', 'middle', NULL),
	(40, '{}', 'senior', NULL);

-- the shipped refusal chains and the polite decline for priority 5
SELECT scoring.install_defaults() AS refusal_reasons \gset

-- the backlog of the month was handed out before the day began
SELECT set_config('demo.day', :'day', false) AS day_set,
	   set_config('scoring.now', (:'day'::date - 3 + time '17:00')::text, false) AS now_set
\gset
UPDATE scoring.lead SET status = 'accepted', assignee_id = 1 + (lead_id % 8)::int
 WHERE status IN ('queued', 'new', 'assigned');

SELECT setseed(0.16) AS seeded \gset

DO $$
DECLARE
	day date := current_setting('demo.day')::date;
	tick timestamptz;
	m record;
	local time;
	n int;
BEGIN
	FOR tick IN SELECT generate_series((day + time '08:00') AT TIME ZONE 'Europe/Moscow',
									   (day + time '21:00') AT TIME ZONE 'Europe/Moscow',
									   interval '5 minutes')
	LOOP
		PERFORM set_config('scoring.now', tick::text, true);

		-- presence: on shift and not at lunch means the mouse moves
		FOR m IN SELECT * FROM scoring.manager LOOP
			local := (tick AT TIME ZONE m.time_zone)::time;
			IF local >= m.shift_start AND local < m.shift_end
			   AND NOT (local >= m.lunch_start AND local < m.lunch_end) THEN
				PERFORM scoring.heartbeat(m.manager_id, random() < 0.3, tick);
			ELSIF local >= m.lunch_start AND local < m.lunch_end THEN
				PERFORM scoring.set_presence(m.manager_id, 'away', tick);
			ELSE
				PERFORM scoring.set_presence(m.manager_id, 'offline', tick);
			END IF;
		END LOOP;

		-- leads arrive, more around midday: copies of this month's leads
		n := floor(random() * CASE WHEN extract(hour FROM tick AT TIME ZONE 'Europe/Moscow')
										  BETWEEN 10 AND 16 THEN 4 ELSE 2 END);
		INSERT INTO scoring.lead (created_at, client_id, shop, channel, category, brand,
								  budget, features)
		SELECT tick, client_id, shop, channel, category, brand, budget, features
		  FROM scoring.lead
		 WHERE created_at >= date_trunc('month', day) AND created_at < day
		 ORDER BY random()
		 LIMIT n;

		-- managers accept what they were given a few minutes ago, mostly
		PERFORM scoring.accept(lead_id)
		   FROM scoring.lead
		  WHERE status = 'assigned' AND assigned_at <= tick - interval '5 minutes'
			AND random() < 0.5;

		PERFORM scoring.dispatch(tick);
	END LOOP;
END;
$$;

\echo 'Leads received today by each manager (their working day), and how many are open:'
SELECT m.manager_id, m.full_name, m.tier, l.day_leads AS received_today,
	   round(l.day_profit) AS expected_profit_today, l.open_leads
  FROM scoring.manager m JOIN scoring.manager_load l USING (manager_id)
 ORDER BY m.manager_id;

\echo 'What happened to the day''s leads:'
SELECT status, count(*) AS leads
  FROM scoring.lead
 WHERE created_at >= (:'day'::date + time '00:00') AT TIME ZONE 'Europe/Moscow'
 GROUP BY status ORDER BY leads DESC;

\echo 'Routing decisions and why managers were passed over (candidate exclusions):'
SELECT a.event, coalesce(c ->> 'excluded', 'eligible') AS candidate, count(*) AS times
  FROM scoring.assignment_log a, jsonb_array_elements(a.candidates) c
 WHERE a.at >= (:'day'::date + time '00:00') AT TIME ZONE 'Europe/Moscow'
 GROUP BY 1, 2 ORDER BY 1, 3 DESC;

\echo
\echo '=== 7. The forecast: expected profit of each month against what was won'
\echo

SELECT to_char(month, 'YYYY-MM') AS month, leads,
	   to_char(expected_profit, 'FM999,999,999') AS expected,
	   to_char(won_profit, 'FM999,999,999') AS won,
	   round(accuracy * 100, 1) AS "accuracy %"
  FROM scoring.forecast_monthly
 WHERE leads > 100
 ORDER BY month;

\echo 'Backtest: each month forecast by a model trained on the 12 months before it:'
SELECT coalesce(to_char(month, 'YYYY-MM'), 'all') AS month, leads,
	   to_char(expected_profit, 'FM999,999,999') AS expected,
	   to_char(won_profit, 'FM999,999,999') AS won,
	   round(accuracy * 100, 1) AS "accuracy %", round(bias * 100, 1) AS "bias %"
  FROM scoring.backtest((date_trunc('month', :'day'::date) - interval '3 months')::date,
						date_trunc('month', :'day'::date)::date, '{"seed": 42}');

\echo
\echo '=== 8. Personal plans of the month: the expected profit of the leads each received'
\echo

INSERT INTO scoring.bonus_scale (min_attainment, coefficient) VALUES
	(0, 0), (0.8, 0.5), (0.9, 0.8), (1.0, 1.0), (1.1, 1.2), (1.25, 1.5);
SELECT manager_id, full_name, leads, to_char(plan, 'FM999,999,999') AS plan,
	   to_char(won_profit, 'FM999,999,999') AS won
  FROM scoring.manager_plan
 WHERE month = date_trunc('month', :'day'::date)
 ORDER BY manager_id;

\echo
\echo '=== 9. Automation: refusals get their chain, priority 5 gets the polite decline'
\echo

SELECT set_config('scoring.now', (:'day'::date + time '18:00')::text, false) AS now_set \gset
-- some of the day's priority 4 leads are refused for a reason
UPDATE scoring.lead SET status = 'refused',
	   refusal_reason = (ARRAY['out_of_stock', 'price_too_high', 'delivery_too_long'])[1 + (lead_id % 3)::int]
 WHERE lead_id IN (SELECT lead_id FROM scoring.lead
					WHERE status = 'accepted' AND priority = 4
					  AND created_at >= (:'day'::date + time '00:00') AT TIME ZONE 'Europe/Moscow'
					ORDER BY lead_id LIMIT 5);
SELECT scoring.run_sequences(scoring.clock() + interval '1 minute') AS messages_written;
SELECT e.sequence, count(*) AS enrollments, count(o.message_id) AS messages
  FROM scoring.enrollment e LEFT JOIN scoring.outbox o USING (enrollment_id)
 GROUP BY 1 ORDER BY 2 DESC LIMIT 5;
\echo 'One message as the mailer gets it:'
SELECT subject, body FROM scoring.outbox
 WHERE enrollment_id = (SELECT min(enrollment_id) FROM scoring.enrollment
						 WHERE sequence = 'out_of_stock');

\echo
\echo '=== 10. Active sales: the free pool, best first'
\echo

SELECT scoring.refresh_pool() AS companies_in_pool;
SELECT client_id, name, industry, to_char(potential, 'FM999,999,999') AS potential
  FROM scoring.free_companies LIMIT 5;
