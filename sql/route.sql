--
-- Lead routing (SPEC §2, §6): managers, presence, routes, the routing
-- decision made by the lead trigger, its log, dispatch() and accept().
--
-- Time is fixed with scoring.now (routing) and the argument of dispatch();
-- "now" is Friday 2026-11-27 10:00 in Moscow (07:00 UTC) unless a section
-- says otherwise.  Lead ids are given explicitly because ties between
-- equally loaded managers are broken by a hash of (lead_id, manager_id).
--
-- No model is trained: a model row written by hand (intercept 0, no
-- weights) gives every lead p_win = 0.5, so expected_profit = 0.5 x budget
-- x margin and the priority bands below decide priorities on paper:
--   Fubag (margin 0.2): expected = 0.1 x budget; Kemppi (1.0): 0.5 x budget
--   bands: 1 >= 40000, 2 >= 4000, 3 >= 400, 4 >= 40, below: 5
--
-- Errors are shown tersely, each followed by its SQLSTATE.
--
SET timezone = 'UTC';
\set VERBOSITY terse
SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting,
	scoring.manager, scoring.route, scoring.assignment_log
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Kemppi', 1.0);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');

-- The routing log of a lead, one line per decision (at: Moscow time),
-- candidates as text: "id load/open" for eligible managers, "id:reason"
-- for excluded ones
CREATE TEMP VIEW routing_log AS
SELECT a.lead_id, a.at AT TIME ZONE 'Europe/Moscow' AS at, a.event, a.manager_id AS mgr, a.route_position AS route,
	   a.tier, a.required_skill AS skill,
	   (SELECT string_agg(c->>'manager_id' ||
						  coalesce(':' || (c->>'excluded'),
								   ' ' || (c->>'load') || '/' || (c->>'open')),
						  ', ' ORDER BY (c->>'manager_id')::int)
		  FROM jsonb_array_elements(a.candidates) AS c) AS candidates,
	   a.reason
  FROM scoring.assignment_log a;

-- Is manager_load.open_leads the number of assigned and accepted leads of
-- each manager?  Lists the managers where it is not (none: all is well).
CREATE TEMP VIEW open_mismatch AS
SELECT l.manager_id, l.open_leads,
	   (SELECT count(*) FROM scoring.lead d
		 WHERE d.assignee_id = l.manager_id
		   AND d.status IN ('assigned', 'accepted')) AS actual
  FROM scoring.manager_load l
 WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
						 WHERE d.assignee_id = l.manager_id
						   AND d.status IN ('assigned', 'accepted'));

-- Starts a section afresh: no leads, no log, no managers, default routes
-- and settings
CREATE FUNCTION pg_temp.reset() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning
AS $$
BEGIN
	TRUNCATE scoring.lead, scoring.assignment_log CASCADE;
	DELETE FROM scoring.manager;
	DELETE FROM scoring.route;
	DELETE FROM scoring.setting;
END;
$$;

--
-- 1. Bad manager rows and presence calls for unknown managers: a clear
-- error with its own SQLSTATE, and nothing stored
--
INSERT INTO scoring.manager (manager_id, tier, time_zone)
VALUES (1, 'junior', 'Mars/Olympus');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, time_zone)
VALUES (1, 'junior', '');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, lunch_start, lunch_end)
VALUES (1, 'junior', '14:00', '13:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, lunch_start, lunch_end)
VALUES (1, 'junior', '13:00', '13:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, lunch_start)
VALUES (1, 'junior', '13:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, lunch_end)
VALUES (1, 'junior', '14:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, shift_start, shift_end)
VALUES (1, 'junior', '09:00', '09:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.manager (manager_id, tier, max_open_leads)
VALUES (1, 'junior', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.heartbeat(999, true, '2026-11-27 10:00+03');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.set_presence(999, 'online', '2026-11-27 10:00+03');
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM scoring.manager) AS managers,
	   (SELECT count(*) FROM scoring.presence) AS presence,
	   (SELECT count(*) FROM scoring.manager_load) AS loads;
-- a good manager gets its load row at once, and a time zone in any case
INSERT INTO scoring.manager (manager_id, tier, time_zone)
VALUES (1, 'junior', 'europe/kaliningrad');
SELECT * FROM scoring.manager_load;
-- an unknown presence status is refused too
SELECT scoring.set_presence(1, 'sleeping', '2026-11-27 10:00+03');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS presence FROM scoring.presence;
DELETE FROM scoring.manager;

--
-- 2. Who can take a lead: every reason to be left out, and the edges of
-- each.  Seventeen junior managers in Moscow, shift 09:00-18:00 unless
-- said; now is 10:00, presence_timeout 5 minutes, shift_guard 10 minutes.
--
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.manager (manager_id, full_name, tier, active, shift_start,
							 shift_end, lunch_start, lunch_end, max_open_leads)
VALUES (10, 'inactive',            'junior', false, '09:00', '18:00', NULL, NULL, NULL),
	   (11, 'let the lead lapse',  'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (12, 'never seen',          'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (13, 'away',                'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (14, 'offline',             'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (15, 'idle 5 min 1 s',      'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (16, 'idle 5 min: present', 'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (17, 'idle 2 h, on a call', 'junior', true,  '09:00', '18:00', NULL, NULL, NULL),
	   (18, 'shift from 10:00:01', 'junior', true,  '10:00:01', '19:00', NULL, NULL, NULL),
	   (19, 'shift from 10:00',    'junior', true,  '10:00', '19:00', NULL, NULL, NULL),
	   (20, 'shift to 10:10',      'junior', true,  '01:00', '10:10', NULL, NULL, NULL),
	   (21, 'shift to 10:10:01',   'junior', true,  '01:00', '10:10:01', NULL, NULL, NULL),
	   (22, 'lunch from 10:10',    'junior', true,  '09:00', '18:00', '10:10', '11:00', NULL),
	   (23, 'lunch from 10:10:01', 'junior', true,  '09:00', '18:00', '10:10:01', '11:00', NULL),
	   (24, 'lunch until 10:00:01','junior', true,  '09:00', '18:00', '09:30', '10:00:01', NULL),
	   (25, 'lunch until 10:00',   'junior', true,  '09:00', '18:00', '09:30', '10:00', NULL),
	   (26, 'no room: cap 0',      'junior', true,  '09:00', '18:00', NULL, NULL, 0);
SELECT scoring.heartbeat(m, false, '2026-11-27 10:00+03')
  FROM generate_series(10, 26) AS m WHERE m NOT IN (12, 15, 16, 17);
SELECT scoring.set_presence(13, 'away', '2026-11-27 10:00+03');
SELECT scoring.set_presence(14, 'offline', '2026-11-27 10:00+03');
SELECT scoring.heartbeat(15, false, '2026-11-27 09:54:59+03');
SELECT scoring.heartbeat(16, false, '2026-11-27 09:55:00+03');
SELECT scoring.heartbeat(17, true, '2026-11-27 08:00+03');
SELECT manager_id, on_call, last_activity, status FROM scoring.presence
 ORDER BY manager_id;
-- a heartbeat older than the last one does not move last_activity back;
-- heartbeat(on_call => NULL) keeps the call state
SELECT scoring.heartbeat(17, NULL, '2026-11-27 07:00+03');
SELECT manager_id, on_call, last_activity, status FROM scoring.presence
 WHERE manager_id = 17;
-- the lead has lapsed with manager 11 before; budget 1000: junior
INSERT INTO scoring.lead (lead_id, brand, budget, lapsed_ids)
VALUES (201, 'Fubag', 1000, '{11}');
SELECT lead_id, status, assignee_id, assigned_at, priority, expected_profit,
	   routed_expected_profit, score_flags
  FROM scoring.lead WHERE lead_id = 201;
-- eligible: 16, 17, 19, 21, 23, 25, all with no lead today
SELECT * FROM routing_log WHERE lead_id = 201;
-- the next leads go to managers with no lead yet (ties: by the hash;
-- 11 is eligible again, the lapse was with lead 201 only)
INSERT INTO scoring.lead (lead_id, brand, budget)
SELECT i, 'Fubag', 1000 FROM generate_series(202, 206) AS i;
SELECT lead_id, status, assignee_id FROM scoring.lead
 WHERE lead_id BETWEEN 202 AND 206 ORDER BY lead_id;
SELECT manager_id, open_leads, day, day_leads, day_profit FROM scoring.manager_load
 WHERE open_leads > 0 OR day_leads > 0 ORDER BY manager_id;
SELECT candidates FROM routing_log WHERE lead_id = 206;
-- nobody eligible: the lead waits in the queue, with the reasons logged
UPDATE scoring.presence SET status = 'offline'
 WHERE manager_id IN (11, 16, 17, 19, 21, 23, 25);
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (207, 'Fubag', 1000);
SELECT lead_id, status, assignee_id, assigned_at, routed_expected_profit,
	   score_flags
  FROM scoring.lead WHERE lead_id = 207;
SELECT * FROM routing_log WHERE lead_id = 207;
SELECT * FROM open_mismatch;

--
-- 3. Which leads are routed, and where: the default routes by budget,
-- drafts and closed leads (not routed), priority 5 (automation only)
--
SELECT pg_temp.reset();
INSERT INTO scoring.manager (manager_id, tier)
VALUES (31, 'junior'), (32, 'middle'), (33, 'senior');
SELECT scoring.heartbeat(m, true, '2026-11-27 10:00+03') FROM generate_series(31, 33) AS m;
-- the default routes while scoring.route is empty
SELECT position, condition, tier, required_skill, builtin FROM scoring.routes
 ORDER BY position;
INSERT INTO scoring.lead (lead_id, brand, budget, status, closed_at)
VALUES (301, 'Fubag', 99999.99, DEFAULT, NULL),
	   (302, 'Fubag', 100000, 'new', NULL),
	   (303, 'Fubag', 999999.99, 'new', NULL),
	   (304, 'Fubag', 1000000, 'new', NULL),
	   (305, 'Fubag', NULL, 'new', NULL),		-- no budget: senior
	   (306, 'Fubag', 1000, 'draft', NULL),		-- still being filled in
	   (307, 'Fubag', 1000, 'won', '2026-11-20 12:00+03'),	-- history import
	   (308, 'Fubag', 1000, 'lost', '2026-11-20 12:00+03'),
	   (309, 'Fubag', 1000, 'refused', '2026-11-20 12:00+03');
SELECT lead_id, budget, status, assignee_id, assigned_at, priority,
	   routed_expected_profit, score_flags
  FROM scoring.lead WHERE lead_id BETWEEN 301 AND 309 ORDER BY lead_id;
SELECT lead_id, event, mgr, route, tier, candidates FROM routing_log ORDER BY lead_id;
-- a draft becomes ready: routed then
UPDATE scoring.lead SET status = 'new' WHERE lead_id = 306;
SELECT lead_id, status, assignee_id, assigned_at FROM scoring.lead WHERE lead_id = 306;
-- an accepted lead sent back to the pool is routed again; its manager's
-- counters do not move when it comes back to the same manager
SELECT scoring.accept(301);
UPDATE scoring.lead SET status = 'new' WHERE lead_id = 301;
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id = 301;
SELECT manager_id, open_leads, day, day_leads, day_profit FROM scoring.manager_load
 ORDER BY manager_id;
-- no manager of the tier at all
UPDATE scoring.manager SET tier = 'middle' WHERE manager_id = 33;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (310, 'Fubag', 5000000);
SELECT lead_id, status, assignee_id, score_flags FROM scoring.lead WHERE lead_id = 310;
SELECT * FROM routing_log WHERE lead_id = 310;
UPDATE scoring.manager SET tier = 'senior' WHERE manager_id = 33;

-- priority 5 goes to automation, never to a person, even with everyone
-- present: a refused lead, and one below every band (10 = 0.1 x 100)
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('spam', '{"channel": "spam"}');
INSERT INTO scoring.lead (lead_id, channel, brand, budget)
VALUES (311, 'spam', 'Fubag', 99000),
	   (312, 'form', 'Fubag', 100),
	   (313, 'form', 'NoSuchBrand', 100);	-- odd data: a person looks at it
SELECT lead_id, status, assignee_id, assigned_at, priority, routed_expected_profit,
	   score_flags
  FROM scoring.lead WHERE lead_id BETWEEN 311 AND 313 ORDER BY lead_id;
SELECT * FROM routing_log WHERE lead_id BETWEEN 311 AND 313 ORDER BY lead_id;
-- dispatch never hands an 'auto' lead to anyone (and places 310 now that
-- there is a senior again)
SELECT scoring.dispatch('2026-11-27 10:10+03');
SELECT lead_id, status, assignee_id, assigned_at FROM scoring.lead
 WHERE lead_id IN (310, 311, 312) ORDER BY lead_id;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
SELECT * FROM open_mismatch;

--
-- 4. Routes of one's own: skills, a route for any tier, and a lead that no
-- route takes (queued with the flag no_route)
--
SELECT pg_temp.reset();
INSERT INTO scoring.route (position, condition, tier, required_skill)
VALUES (10, '{"category": "gas_power"}', 'senior', 'gas'),
	   (20, '{"category": "compressors", "budget": {"gte": 500000}}', NULL, 'compressors'),
	   (30, '{"budget": {"lt": 100000}}', 'junior', NULL);
-- the user's routes replace the defaults
SELECT position, condition, tier, required_skill, builtin FROM scoring.routes
 ORDER BY position;
INSERT INTO scoring.manager (manager_id, tier, skills)
VALUES (41, 'senior', '{gas,compressors}'),
	   (42, 'senior', '{}'),
	   (43, 'middle', '{compressors}'),
	   (44, 'junior', '{compressors}'),
	   (45, 'junior', '{}');
SELECT scoring.heartbeat(m, true, '2026-11-27 10:00+03') FROM generate_series(41, 45) AS m;
INSERT INTO scoring.lead (lead_id, category, brand, budget)
VALUES (401, 'gas_power', 'Fubag', 50000),		-- route 10: senior with gas (41)
	   (402, 'gas_power', 'Fubag', 5000000),	-- the same, whatever the budget
	   (403, 'compressors', 'Fubag', 600000),	-- route 20: any tier with the skill
	   (404, 'compressors', 'Fubag', 700000),
	   (405, 'compressors', 'Fubag', 800000),
	   (406, 'compressors', 'Fubag', 1000),		-- route 30: junior, no skill needed
	   (407, 'compressors', 'Fubag', 2000),
	   (408, 'welding', 'Fubag', 200000),		-- no route at all
	   (409, 'welding', 'Fubag', NULL);			-- no budget: no route either
SELECT lead_id, category, budget, status, assignee_id, score_flags
  FROM scoring.lead ORDER BY lead_id;
SELECT * FROM routing_log ORDER BY lead_id;
-- the skilled manager is away: nobody else may take a gas lead
SELECT scoring.set_presence(41, 'away', '2026-11-27 10:00+03');
INSERT INTO scoring.lead (lead_id, category, brand, budget)
VALUES (410, 'gas_power', 'Fubag', 50000);
SELECT * FROM routing_log WHERE lead_id = 410;
-- nobody has the skill at all
UPDATE scoring.route SET required_skill = 'hydrogen' WHERE position = 10;
INSERT INTO scoring.lead (lead_id, category, brand, budget)
VALUES (411, 'gas_power', 'Fubag', 50000);
SELECT * FROM routing_log WHERE lead_id = 411;
-- dispatch keeps trying the queued leads; those with no route stay queued
-- and are not logged again
SELECT scoring.dispatch('2026-11-27 10:05+03');
SELECT scoring.dispatch('2026-11-27 10:06+03');
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE status = 'queued'
 ORDER BY lead_id;
SELECT lead_id, count(*) AS decisions FROM scoring.assignment_log
 WHERE lead_id IN (408, 409, 410, 411) GROUP BY lead_id ORDER BY lead_id;
-- a dispatch that finds no route again does not flag the lead again: the
-- flag appears once, however often dispatch runs.
SELECT lead_id, score_flags FROM scoring.lead WHERE lead_id IN (408, 409)
 ORDER BY lead_id;
-- a catch-all route added later takes them
INSERT INTO scoring.route (position, condition, tier) VALUES (40, '{}', 'senior');
SELECT scoring.dispatch('2026-11-27 10:07+03');
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id IN (408, 409)
 ORDER BY lead_id;
SELECT * FROM routing_log WHERE lead_id IN (408, 409) AND event = 'assigned'
 ORDER BY lead_id;
SELECT * FROM open_mismatch;

--
-- 5. Shifts and days in each manager's own time zone: a night shift
-- across midnight in Moscow (22:00-06:00, lunch 02:00-02:30), day shifts
-- (09:00-18:00) in Vladivostok (UTC+10), Kaliningrad (UTC+2) and Moscow
-- (UTC+3).  All are on a call, so only shifts and lunches decide.
--
SELECT pg_temp.reset();
INSERT INTO scoring.manager (manager_id, full_name, tier, shift_start, shift_end,
							 lunch_start, lunch_end, time_zone)
VALUES (51, 'night, Moscow',        'junior', '22:00', '06:00', '02:00', '02:30', 'Europe/Moscow'),
	   (52, 'day, Vladivostok',     'junior', '09:00', '18:00', NULL, NULL, 'Asia/Vladivostok'),
	   (53, 'day, Kaliningrad',     'junior', '09:00', '18:00', NULL, NULL, 'Europe/Kaliningrad'),
	   (54, 'day, Moscow',          'junior', '09:00', '18:00', NULL, NULL, 'Europe/Moscow');
SELECT scoring.heartbeat(m, true, '2026-11-27 00:00+03') FROM generate_series(51, 54) AS m;
-- leads are not accepted here; keep dispatch from moving them
INSERT INTO scoring.setting (name, value) VALUES ('accept_timeout', '"1 day"');
-- one lead at each moment (Moscow time); the log says who could take it
SET scoring.now = '2026-11-27 09:30+03';	-- Vladivostok 16:30, Kaliningrad 08:30
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (501, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:00+03';	-- Vladivostok 17:00, Kaliningrad 09:00
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (502, 'Fubag', 1000);
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (503, 'Fubag', 1000);
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (504, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:50+03';	-- Vladivostok 17:50: shift ending
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (505, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:00+03';	-- Vladivostok 18:00: gone
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (506, 'Fubag', 1000);
SET scoring.now = '2026-11-27 21:59+03';	-- nobody on shift
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (507, 'Fubag', 1000);
SELECT scoring.dispatch('2026-11-27 22:00+03');	-- the night shift starts
SET scoring.now = '2026-11-27 23:30+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (508, 'Fubag', 1000);
SET scoring.now = '2026-11-28 01:50+03';	-- 10 minutes before the night lunch
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (509, 'Fubag', 1000);
-- 02:15: the night shift is at lunch; it is 09:15 of the 28th in
-- Vladivostok: a new working day there, load 0 though 2 leads yesterday
SET scoring.now = '2026-11-28 02:15+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (510, 'Fubag', 1000);
-- back from lunch: the night shift is still in its working day of the 27th
-- and its leads from before midnight count
SET scoring.now = '2026-11-28 02:30+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (511, 'Fubag', 1000);
SET scoring.now = '2026-11-28 02:45+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (512, 'Fubag', 1000);
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (513, 'Fubag', 1000);
SET scoring.now = '2026-11-28 05:50+03';	-- the night shift is ending
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (514, 'Fubag', 1000);
SET scoring.now = '2026-11-28 06:00+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (515, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:00+03';
SELECT lead_id, at, event, mgr, candidates FROM routing_log ORDER BY lead_id, at;
SELECT manager_id, open_leads, day, day_leads FROM scoring.manager_load
 ORDER BY manager_id;
-- the working day itself
SELECT scoring.working_day('Europe/Moscow', '22:00', '06:00', '2026-11-27 23:30+03') AS night_before,
	   scoring.working_day('Europe/Moscow', '22:00', '06:00', '2026-11-28 02:45+03') AS night_after,
	   scoring.working_day('Asia/Vladivostok', '09:00', '18:00', '2026-11-28 02:45+03') AS vladivostok,
	   scoring.working_day('Europe/Kaliningrad', '09:00', '18:00', '2026-11-27 23:30+03') AS kaliningrad;
SELECT * FROM open_mismatch;

--
-- 6. A late starter catches up: loads count the leads of the manager's own
-- working day, so yesterday's leads do not hold anyone back, and whoever
-- starts late gets the next leads until level with the others
--
SELECT pg_temp.reset();
INSERT INTO scoring.manager (manager_id, tier) VALUES (61, 'junior'), (62, 'junior'), (63, 'junior');
-- Thursday: only 63 works, and gets 5 leads
SET scoring.now = '2026-11-26 10:00+03';
SELECT scoring.heartbeat(63, true, '2026-11-26 10:00+03');
INSERT INTO scoring.lead (lead_id, brand, budget)
SELECT i, 'Fubag', 1000 FROM generate_series(601, 605) AS i;
SELECT scoring.set_presence(63, 'offline', '2026-11-26 18:00+03');
-- Friday: 61 and 62 from 09:00, 6 leads by 11:00
SELECT scoring.heartbeat(61, true, '2026-11-27 09:00+03'),
	   scoring.heartbeat(62, true, '2026-11-27 09:00+03');
SET scoring.now = '2026-11-27 09:10+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (611, 'Fubag', 1000);
SET scoring.now = '2026-11-27 09:25+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (612, 'Fubag', 1000);
SET scoring.now = '2026-11-27 09:40+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (613, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:05+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (614, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:20+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (615, 'Fubag', 1000);
SET scoring.now = '2026-11-27 10:45+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (616, 'Fubag', 1000);
-- 63 starts at 11:00
SELECT scoring.heartbeat(63, true, '2026-11-27 11:00+03');
SET scoring.now = '2026-11-27 11:00+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (621, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:10+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (622, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:20+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (623, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:30+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (624, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:40+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (625, 'Fubag', 1000);
SET scoring.now = '2026-11-27 11:50+03';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (626, 'Fubag', 1000);
SELECT lead_id, at, mgr, candidates FROM routing_log WHERE lead_id > 610
 ORDER BY lead_id;
-- level by the end: 4 leads each today; 63 also has its 5 of yesterday open
SELECT manager_id, open_leads, day, day_leads FROM scoring.manager_load
 ORDER BY manager_id;
SELECT assignee_id, count(*) AS today FROM scoring.lead
 WHERE assigned_at >= '2026-11-27 00:00+03' GROUP BY assignee_id ORDER BY assignee_id;

--
-- 7. Balancing by expected profit instead of the number of leads
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.setting (name, value) VALUES ('balance_by', '"at random"');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.setting (name, value) VALUES ('balance_by', '"expected_profit"');
SELECT name, value FROM scoring.settings WHERE name = 'balance_by';
INSERT INTO scoring.manager (manager_id, tier) VALUES (71, 'junior'), (72, 'junior');
SELECT scoring.heartbeat(m, true, '2026-11-27 10:00+03') FROM generate_series(71, 72) AS m;
-- one big lead (expected 9000), then small ones (100 each): the small ones
-- all go to the other manager until that one's profit passes 9000
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (701, 'Fubag', 90000);
INSERT INTO scoring.lead (lead_id, brand, budget)
SELECT i, 'Fubag', 1000 FROM generate_series(702, 706) AS i;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (707, 'Fubag', 90000);
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (708, 'Fubag', 1000);
SELECT d.lead_id, d.expected_profit, d.routed_expected_profit, d.assignee_id,
	   r.candidates
  FROM scoring.lead d JOIN routing_log r USING (lead_id) ORDER BY d.lead_id;
SELECT manager_id, open_leads, day_leads, day_profit FROM scoring.manager_load
 ORDER BY manager_id;
-- back to counting leads: the manager with fewer leads gets the next one
DELETE FROM scoring.setting WHERE name = 'balance_by';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (709, 'Fubag', 90000);
SELECT lead_id, mgr, candidates FROM routing_log WHERE lead_id = 709;
SELECT * FROM open_mismatch;

--
-- 8. The open-lead cap, and counters kept by hand-made changes: closing a
-- lead (won, lost, refused) from any open status, moving it to another
-- manager, accepting it
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.manager (manager_id, tier, max_open_leads)
VALUES (81, 'junior', 1), (82, 'junior', 2);
SELECT scoring.heartbeat(m, true, '2026-11-27 10:00+03') FROM generate_series(81, 82) AS m;
INSERT INTO scoring.lead (lead_id, brand, budget)
SELECT i, 'Fubag', 1000 FROM generate_series(801, 805) AS i;
SELECT lead_id, status, assignee_id FROM scoring.lead ORDER BY lead_id;
SELECT lead_id, event, mgr, candidates, reason FROM routing_log ORDER BY lead_id;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
-- accepting keeps the lead open: still at the cap
SELECT scoring.accept(801);
SELECT scoring.dispatch('2026-11-27 10:01+03');
-- closing the accepted lead as won frees a place: dispatch fills it with
-- the oldest queued lead (804; 805 waits)
UPDATE scoring.lead SET status = 'won', won_profit = 150, closed_at = '2026-11-27 10:02+03'
 WHERE lead_id = 801;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
SELECT scoring.dispatch('2026-11-27 10:03+03');
-- an assigned (not yet accepted) lead closed as lost
UPDATE scoring.lead SET status = 'lost', closed_at = '2026-11-27 10:04+03'
 WHERE lead_id = 802;
SELECT scoring.dispatch('2026-11-27 10:05+03');
SELECT lead_id, status, assignee_id, assigned_at FROM scoring.lead ORDER BY lead_id;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
SELECT * FROM open_mismatch;
-- moved by hand from 82 to 81 (the CRM may overrule the cap): the counters
-- follow, and the lead counts as received by 81 today
SELECT lead_id, assignee_id, expected_profit FROM scoring.lead WHERE assignee_id = 82
 ORDER BY lead_id;
SELECT manager_id, open_leads, day_leads, day_profit FROM scoring.manager_load
 ORDER BY manager_id;
UPDATE scoring.lead SET assignee_id = 81 WHERE lead_id = 803;
-- a lead given by hand (or inserted as 'assigned') counts with its expected
-- profit (100.00), so balance_by = 'expected_profit' sees it: 81 shows 3
-- leads and 300.00.
SELECT manager_id, open_leads, day_leads, day_profit FROM scoring.manager_load
 ORDER BY manager_id;
SELECT * FROM open_mismatch;
-- refused, from 'accepted'
SELECT scoring.accept(803, 81);
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'out of stock',
	   closed_at = '2026-11-27 10:06+03' WHERE lead_id = 803;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
SELECT * FROM open_mismatch;
-- a queued lead closed by hand: no counter moves
INSERT INTO scoring.lead (lead_id, brand, budget, status) VALUES (806, 'Fubag', 1000, 'queued');
UPDATE scoring.lead SET status = 'lost' WHERE lead_id = 806;
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
-- deleting an open lead takes it out of its manager's open_leads, like any
-- other close, so the manager is not left "at_cap" for good.
SELECT lead_id, status, assignee_id FROM scoring.lead
 WHERE status IN ('assigned', 'accepted') ORDER BY lead_id;
DELETE FROM scoring.lead WHERE lead_id = 805;
SELECT * FROM open_mismatch;

--
-- 9. Queued leads are placed priority first, oldest first.  Nobody is
-- present while six leads arrive; then two managers with room for three
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.manager (manager_id, tier, max_open_leads)
VALUES (91, 'junior', 2), (92, 'junior', 1);
INSERT INTO scoring.lead (lead_id, created_at, brand, budget)
VALUES (901, '2026-11-27 08:00+03', 'Fubag', 9000),	-- priority 3
	   (902, '2026-11-27 09:00+03', 'Fubag', 90000),	-- 2
	   (903, '2026-11-27 07:00+03', 'Fubag', 900),		-- 4, the oldest
	   (904, '2026-11-27 09:30+03', 'Kemppi', 90000),	-- 1, the newest
	   (905, '2026-11-27 08:30+03', 'Fubag', 90000),	-- 2
	   (906, '2026-11-27 07:30+03', 'Fubag', 9000);	-- 3
SELECT lead_id, created_at, priority, status FROM scoring.lead ORDER BY lead_id;
SELECT lead_id, candidates, reason FROM routing_log ORDER BY lead_id;
-- dispatch with nobody present places nothing and logs nothing more
SELECT scoring.dispatch('2026-11-27 10:01+03');
SELECT count(*) AS decisions FROM scoring.assignment_log;
SELECT scoring.heartbeat(m, true, '2026-11-27 10:02+03') FROM generate_series(91, 92) AS m;
SELECT scoring.dispatch('2026-11-27 10:03+03');
-- the three best: 904 (priority 1), then 905 and 902 (priority 2, older first)
SELECT lead_id, status, assignee_id, assigned_at FROM scoring.lead ORDER BY lead_id;
-- the rest in order once there is room
UPDATE scoring.manager SET max_open_leads = NULL;
SELECT scoring.dispatch('2026-11-27 10:04+03');
SELECT a.lead_id, l.priority, l.created_at, a.at, a.manager_id
  FROM scoring.assignment_log a JOIN scoring.lead l USING (lead_id)
 WHERE a.event = 'assigned' ORDER BY a.log_id;
SELECT * FROM open_mismatch;

--
-- 10. Not accepted in time (accept_timeout 15 minutes): dispatch gives the
-- lead to someone else, never back to whoever let it lapse
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.manager (manager_id, tier)
VALUES (101, 'junior'), (102, 'junior'), (103, 'junior'), (104, 'junior');
SELECT scoring.heartbeat(m, true, '2026-11-27 10:00+03') FROM generate_series(101, 103) AS m;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1001, 'Fubag', 1000), (1002, 'Fubag', 1000);
SELECT scoring.accept(1002);		-- accepted leads stay where they are
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead ORDER BY lead_id;
-- not yet: 14 minutes 59 seconds
SELECT scoring.dispatch('2026-11-27 10:14:59+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
SELECT scoring.dispatch('2026-11-27 10:15:01+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
-- the old manager (103) can no longer accept it
SELECT scoring.accept(1001, 103);
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.dispatch('2026-11-27 10:30:02+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
-- everybody present has let it lapse: back to the queue, not back to them
SELECT scoring.dispatch('2026-11-27 10:45:03+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
SELECT scoring.dispatch('2026-11-27 11:00+03');
SELECT lead_id, status, assignee_id, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
-- a manager who has not had it comes: the lead goes there
SELECT scoring.heartbeat(104, true, '2026-11-27 11:05+03');
SELECT scoring.dispatch('2026-11-27 11:05+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead WHERE lead_id = 1001;
SELECT scoring.accept(1001, 104);
SELECT lead_id, at, event, mgr, candidates, reason FROM routing_log
 WHERE lead_id = 1001 AND event <> 'accepted' ORDER BY at;
-- the lead counts once as open, with 104; each manager received it once
-- (102 also has 1002)
SELECT manager_id, open_leads, day_leads FROM scoring.manager_load ORDER BY manager_id;
SELECT * FROM open_mismatch;

--
-- 11. accept(): the assigned manager takes the lead, once
--
SELECT lead_id, status, assignee_id FROM scoring.lead ORDER BY lead_id;
SELECT scoring.accept(1001);		-- already accepted
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.accept(123456);		-- no such lead
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1101, 'Fubag', 1000);
INSERT INTO scoring.lead (lead_id, channel, brand, budget) VALUES (1102, 'spam', 'Fubag', 1000);
INSERT INTO scoring.lead (lead_id, brand, budget, status) VALUES (1103, 'Fubag', 1000, 'draft');
UPDATE scoring.presence SET status = 'offline';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1104, 'Fubag', 1000);
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id > 1100 ORDER BY lead_id;
SELECT scoring.accept(1102);		-- automation only
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.accept(1103);		-- a draft
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.accept(1104);		-- waiting in the queue
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.accept(1101, 102);	-- not 102's lead
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.accept(1101, 999);	-- nobody's
\echo :LAST_ERROR_SQLSTATE
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id = 1101;
SELECT scoring.accept(1101, (SELECT assignee_id FROM scoring.lead WHERE lead_id = 1101));
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id = 1101;
SELECT l.lead_id, l.event, l.manager_id = d.assignee_id AS by_assignee
  FROM scoring.assignment_log l JOIN scoring.lead d USING (lead_id)
 WHERE l.event = 'accepted' ORDER BY l.log_id;
SELECT * FROM open_mismatch;

--
-- 12. A lead moved by hand to another manager gives that manager the full
-- accept_timeout from the move
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 11:30+03';
INSERT INTO scoring.manager (manager_id, tier)
VALUES (121, 'junior'), (122, 'junior'), (123, 'junior');
SELECT scoring.heartbeat(m, true, '2026-11-27 11:30+03') FROM generate_series(121, 123) AS m;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1201, 'Fubag', 1000);
SELECT lead_id, status, assignee_id, assigned_at FROM scoring.lead;
SET scoring.now = '2026-11-27 11:50+03';
UPDATE scoring.lead SET assignee_id = CASE assignee_id WHEN 121 THEN 122 ELSE 121 END;
-- a move by hand restarts the acceptance clock (assigned_at = 11:50), so the
-- next dispatch, one minute after the move, leaves the lead with its new
-- manager and places nothing.
SELECT scoring.dispatch('2026-11-27 11:51+03');
SELECT lead_id, status, assignee_id, assigned_at, lapsed_ids FROM scoring.lead;
SET scoring.now = '2026-11-27 10:00+03';

--
-- 13. Presence marked by hand, and the clock
--
SELECT pg_temp.reset();
SET scoring.now = '2026-11-27 10:00+03';
INSERT INTO scoring.manager (manager_id, tier) VALUES (131, 'junior');
-- active at 09:00, away at 09:30, back online at 10:00 with no heartbeat
SELECT scoring.heartbeat(131, false, '2026-11-27 09:00+03');
SELECT scoring.set_presence(131, 'away', '2026-11-27 09:30+03');
SELECT scoring.set_presence(131, 'online', '2026-11-27 10:00+03');
-- set_presence(.., 'online', at) is activity at "at", also for a manager who
-- already has a presence row: online at 10:00 is present at 10:00.
SELECT manager_id, on_call, last_activity, status FROM scoring.presence;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1301, 'Fubag', 1000);
SELECT lead_id, status, assignee_id FROM scoring.lead WHERE lead_id = 1301;
-- offline and away also end a call
SELECT scoring.heartbeat(131, true, '2026-11-27 10:01+03');
SELECT scoring.set_presence(131, 'offline', '2026-11-27 10:02+03');
SELECT manager_id, on_call, status FROM scoring.presence;

-- scoring.now: empty means the start of the transaction
SELECT scoring.heartbeat(131, true, '2026-11-27 10:00+03');
-- (whatever the clock says: on a call, on shift all day, no shift guard)
UPDATE scoring.manager SET shift_start = '00:00', shift_end = '23:59:59.999999';
INSERT INTO scoring.setting (name, value) VALUES ('shift_guard', '"0 minutes"');
RESET scoring.now;
SHOW scoring.now;
BEGIN;
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1302, 'Fubag', 1000);
SELECT status, assignee_id, assigned_at = now() AS at_transaction_start
  FROM scoring.lead WHERE lead_id = 1302;
SELECT at = now() AS logged_at_transaction_start FROM scoring.assignment_log
 WHERE lead_id = 1302;
COMMIT;
SET scoring.now = 'not a time';
\echo :LAST_ERROR_SQLSTATE
-- the moment 2000-01-01 00:00 UTC (PostgreSQL's epoch, stored as 0) is a
-- moment like any other: the lead is routed and logged then.
SET scoring.now = '2000-01-01 00:00+00';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1303, 'Fubag', 1000);
SELECT at = '2000-01-01 00:00+00' AS logged_at_scoring_now FROM scoring.assignment_log
 WHERE lead_id = 1303;
-- one microsecond later is fine
SET scoring.now = '2000-01-01 00:00:00.000001+00';
INSERT INTO scoring.lead (lead_id, brand, budget) VALUES (1304, 'Fubag', 1000);
SELECT at = '2000-01-01 00:00:00.000001+00' AS logged_at_scoring_now
  FROM scoring.assignment_log WHERE lead_id = 1304;
RESET scoring.now;

-- leave nothing behind for other tests
SELECT pg_temp.reset();
TRUNCATE scoring.refusal_rule, scoring.priority_band, scoring.brand, scoring.model;
