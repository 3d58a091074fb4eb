--
-- A simulated working day (SPEC §2): four junior managers in Moscow,
-- shift 09:00-18:00, who come online at different hours and take lunch;
-- a lead every 2 minutes from 09:00; heartbeats every minute from whoever
-- is at work, dispatch() every minute as pg_cron would, every lead
-- accepted 4 minutes after it was assigned and closed 40 minutes later.
--
--   A: from 09:00, lunch 12:00-13:00      C: from 10:00, lunch 14:00-14:45
--   B: from 09:00, lunch 13:00-14:00      D: from 13:00 (the late starter)
--
-- By 13:00 A, B and C have had about 40 leads each and D none; D must get
-- the next leads until level, and all four end the day within one lead.
-- The day before, D worked alone and got 30 leads: they do not count today.
--
-- Runs in a fresh database with pgtap and scoring; changes nothing (ROLLBACK).
--
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SELECT plan(16);

INSERT INTO scoring.manager (manager_id, full_name, tier, lunch_start, lunch_end, max_open_leads)
VALUES (1, 'A', 'junior', '12:00', '13:00', 25),
	   (2, 'B', 'junior', '13:00', '14:00', 25),
	   (3, 'C', 'junior', '14:00', '14:45', 25),
	   (4, 'D', 'junior', NULL, NULL, 25);
CREATE TEMP TABLE arrives (manager_id int, at time);
INSERT INTO arrives VALUES (1, '09:00'), (2, '09:00'), (3, '10:00'), (4, '13:00');

-- Thursday: D alone, 30 leads, all closed by the evening
SELECT scoring.heartbeat(4, true, '2026-11-26 10:00+03') IS NULL AS seen \gset
SELECT set_config('scoring.now', '2026-11-26 10:00+03', true) IS NOT NULL AS set \gset
INSERT INTO scoring.lead (lead_id, budget)
SELECT i, 1000 FROM generate_series(1, 30) AS i;
UPDATE scoring.lead SET status = 'won', closed_at = '2026-11-26 17:00+03';
SELECT scoring.set_presence(4, 'offline', '2026-11-26 18:00+03') IS NULL AS gone \gset

-- Friday, minute by minute
CREATE TEMP TABLE dispatched (at timestamptz, placed int);
DO $$
DECLARE
	t	timestamptz;
	m	record;
	id	bigint := 1000;
BEGIN
	FOR t IN SELECT generate_series('2026-11-27 09:00+03'::timestamptz,
									'2026-11-27 18:00+03', interval '1 minute')
	LOOP
		PERFORM set_config('scoring.now', to_char(t AT TIME ZONE 'UTC',
												  'YYYY-MM-DD HH24:MI:SS+00'), true);
		-- whoever is at work moves the mouse
		FOR m IN SELECT a.manager_id FROM arrives a
				  WHERE (t AT TIME ZONE 'Europe/Moscow')::time >= a.at
		LOOP
			PERFORM scoring.heartbeat(m.manager_id, false, t);
		END LOOP;
		-- pg_cron
		INSERT INTO dispatched VALUES (t, scoring.dispatch(t));
		-- a lead every two minutes
		IF extract(minute FROM t)::int % 2 = 0 AND t < '2026-11-27 18:00+03' THEN
			id := id + 1;
			INSERT INTO scoring.lead (lead_id, created_at, budget) VALUES (id, t, 1000);
		END IF;
		-- managers accept after 4 minutes and close after 40
		PERFORM scoring.accept(lead_id) FROM scoring.lead
		  WHERE status = 'assigned' AND assigned_at <= t - interval '4 minutes';
		UPDATE scoring.lead SET status = 'won', closed_at = t
		 WHERE status = 'accepted' AND assigned_at <= t - interval '40 minutes';
	END LOOP;
END;
$$;

-- the day's leads and where they went
CREATE TEMP TABLE today AS
SELECT d.lead_id, d.status, d.assignee_id, d.assigned_at AT TIME ZONE 'Europe/Moscow' AS at
  FROM scoring.lead d WHERE d.lead_id > 1000;

SELECT is((SELECT count(*) FROM today), 270::bigint, '270 leads from 09:00 to 17:58');
SELECT is((SELECT count(*) FROM today t JOIN scoring.lead d USING (lead_id)
			WHERE t.assignee_id IS NULL AND d.created_at < '2026-11-27 17:50+03'), 0::bigint,
		  'every lead before 17:50 found a manager');
SELECT is((SELECT count(*) FROM today WHERE at::time < '13:00' AND assignee_id = 4), 0::bigint,
		  'D gets nothing before coming online at 13:00');
SELECT is((SELECT count(*) FROM today WHERE at::time < '10:00' AND assignee_id = 3), 0::bigint,
		  'C gets nothing before coming online at 10:00');
SELECT is((SELECT count(*) FROM today t JOIN scoring.manager m ON m.manager_id = t.assignee_id
			WHERE t.at::time >= m.lunch_start - interval '10 minutes'
			  AND t.at::time < m.lunch_end), 0::bigint,
		  'nobody gets a lead at lunch or in the 10 minutes before it');
SELECT is((SELECT count(*) FROM today WHERE at::time >= '17:50'), 0::bigint,
		  'nobody gets a lead in the last 10 minutes of the shift');
SELECT is((SELECT array_agg(lead_id ORDER BY lead_id) FROM scoring.lead WHERE status = 'queued'),
		  (SELECT array_agg(lead_id ORDER BY lead_id) FROM scoring.lead
			WHERE lead_id > 1000 AND created_at >= '2026-11-27 17:50+03'),
		  'the leads of 17:50-17:58 wait in the queue for tomorrow');
-- D's first hour: catching up
SELECT ok((SELECT count(*) FILTER (WHERE assignee_id = 4)
				  > 2 * count(*) FILTER (WHERE assignee_id <> 4)
			 FROM today WHERE at::time >= '13:00' AND at::time < '14:00'),
		  'in its first hour D gets more than twice as many leads as the others together');
SELECT is((SELECT array_agg(day ORDER BY manager_id) FROM scoring.manager_load),
		  '{2026-11-27,2026-11-27,2026-11-27,2026-11-27}'::date[],
		  'every load is of today');
SELECT is((SELECT day_leads FROM scoring.manager_load WHERE manager_id = 4),
		  (SELECT count(*)::int FROM today WHERE assignee_id = 4),
		  'D''s day_leads are today''s leads only (yesterday''s 30 do not count)');
SELECT cmp_ok((SELECT max(day_leads) - min(day_leads) FROM scoring.manager_load), '<=', 1,
			  'at the end of the day the four have day_leads within one of each other');
SELECT ok((SELECT abs(d.day_leads - o.day_leads) <= 1
			 FROM scoring.manager_load d, scoring.manager_load o
			WHERE d.manager_id = 4 AND o.manager_id <> 4
			ORDER BY abs(d.day_leads - o.day_leads) DESC LIMIT 1),
		  'the late starter D ends level with each of the others (+-1)');
SELECT is((SELECT sum(day_leads)::bigint FROM scoring.manager_load),
		  (SELECT count(*) FROM today WHERE assignee_id IS NOT NULL),
		  'sum of day_leads = leads assigned today');
SELECT is((SELECT sum(placed)::bigint FROM dispatched), 0::bigint,
		  'every lead was accepted in time: dispatch had nothing to move');
SELECT is_empty(
	$$SELECT l.manager_id FROM scoring.manager_load l
	   WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
							   WHERE d.assignee_id = l.manager_id
								 AND d.status IN ('assigned', 'accepted'))$$,
	'open_leads = assigned + accepted per manager at the end of the day');
SELECT is((SELECT count(*) FROM scoring.assignment_log a JOIN today t USING (lead_id)
			WHERE a.event = 'assigned'), 265::bigint,
		  'one assignment logged per placed lead');

SELECT diag('day_leads: ' || string_agg(m.full_name || ' ' || l.day_leads, ', ' ORDER BY m.manager_id))
  FROM scoring.manager_load l JOIN scoring.manager m USING (manager_id);

SELECT * FROM finish();
ROLLBACK;
