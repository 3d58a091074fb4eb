--
-- Follow-up sequences (SPEC §3, §6): sequences and their validation,
-- enroll(), lead_context(), run_sequences() with its stops, business days
-- and daily caps, mark_sent(), the refusal chains and the polite decline
-- started by the lead triggers, install_defaults().
--
-- Time is given explicitly to enroll() and run_sequences(); the session
-- is in UTC, clients in Moscow (UTC+3, no daylight saving) unless a
-- section says otherwise.  March 2026: Mon 2, Fri 6, Sat 7, Sun 8, Mon 9.
--
-- No model is trained: a model row written by hand (intercept 0, no
-- weights) gives every lead p_win = 0.5, so expected_profit = 0.5 x budget
-- x margin and these bands decide the priority:
--   Fubag (margin 0.2): expected = 0.1 x budget; Kemppi (1.0): 0.5 x budget
--   bands: 1 >= 40000, 2 >= 4000, 3 >= 400, 4 >= 40, below: 5
-- so Fubag 50000 is priority 2, Kemppi 100000 priority 1, Fubag 100
-- priority 5.  Leads are inserted as 'accepted' (or 'draft') so that they
-- are not routed.
--
-- Errors are shown tersely, each followed by its SQLSTATE.
--
SET timezone = 'UTC';
\set VERBOSITY terse
SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting,
	scoring.manager, scoring.route, scoring.assignment_log,
	scoring.sequence, scoring.enrollment, scoring.outbox,
	scoring.refusal_reason, scoring.touch, scoring.claim, scoring.claim_history
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Kemppi', 1.0), ('ESAB', 0.5);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.manager (manager_id, login, full_name, tier)
VALUES (1, 'm_1', 'Менеджер Один', 'junior'), (2, 'm_a', 'Менеджер Два', 'junior');
INSERT INTO scoring.client (client_id, kind, name, attrs)
VALUES (1, 'company', 'ООО «Сварка»', '{"email": "buyer@svarka.ru"}');

-- a client of its own (id = the lead's id) and an accepted lead: Fubag
-- 50000, priority 2; returns the lead's id
CREATE FUNCTION pg_temp.lead(id bigint, assignee int DEFAULT 1,
							 tz text DEFAULT 'Europe/Moscow')
RETURNS bigint LANGUAGE sql AS $$
	INSERT INTO scoring.client (client_id, name, time_zone, attrs)
	VALUES (id, 'Клиент ' || id, tz, jsonb_build_object('email', 'c' || id || '@example.ru'));
	INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, category,
							  brand, budget, status, assignee_id)
	VALUES (id, '2026-03-01 12:00+00', id, 'web', 'email', 'welding', 'Fubag', 50000,
			'accepted', assignee)
	RETURNING lead_id;
$$;

-- runs a statement: 'ok', or the SQLSTATE of its error
CREATE FUNCTION pg_temp.sqlstate(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END;
$$;

CREATE TEMP VIEW enr AS
SELECT enrollment_id AS id, lead_id, sequence, step, next_at, state, stop_reason,
	   stopped_at
  FROM scoring.enrollment;

CREATE TEMP VIEW box AS
SELECT message_id AS id, lead_id, enrollment_id AS enr, step, to_address, subject,
	   created_at, sent_at
  FROM scoring.outbox;

--
-- 1. A sequence's steps are checked when it is stored (SQLSTATE 22023):
-- a non-empty array of {"delay": interval, "subject": template, "body":
-- template}, delays not negative, templates well formed
--
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '{"delay": "0", "subject": "s", "body": "b"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '"steps"');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', 'null');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[1]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "0", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "0", "subject": "s"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": 3, "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "0", "subject": null, "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "0", "subject": "s", "body": ["b"]}]');
\echo :LAST_ERROR_SQLSTATE
-- the step that is wrong is named
INSERT INTO scoring.sequence (name, steps)
VALUES ('bad', '[{"delay": "0", "subject": "s", "body": "b"}, {"delay": "1 day", "subject": "s"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "3 dayz", "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "", "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "infinity", "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps)
VALUES ('bad', '[{"delay": "0", "subject": "s", "body": "b"}, {"delay": "-1 day", "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "1 day -25 hours", "subject": "s", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps) VALUES ('bad', '[{"delay": "0", "subject": "{{#lead}}x", "body": "b"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.sequence (name, steps)
VALUES ('bad', '[{"delay": "0", "subject": "s", "body": "b"}, {"delay": "1 day", "subject": "s", "body": "Hi {{client.name}"}]');
\echo :LAST_ERROR_SQLSTATE
-- a delay of more than 10 years is refused when the sequence is stored,
-- not when a chain reaches it
SELECT pg_temp.sqlstate($$
	INSERT INTO scoring.sequence (name, steps)
	VALUES ('bad', '[{"delay": "0", "subject": "s", "body": "b"}, {"delay": "100000000 years", "subject": "s", "body": "b"}]')
$$) AS huge_delay;
DELETE FROM scoring.sequence WHERE name = 'bad';
-- the daily cap is positive
INSERT INTO scoring.sequence (name, steps, daily_cap)
VALUES ('bad', '[{"delay": "0", "subject": "s", "body": "b"}]', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS stored FROM scoring.sequence;

-- the sequences used below
INSERT INTO scoring.sequence (name, steps, description) VALUES
('demo', jsonb_build_array(
	jsonb_build_object('delay', '0',
		'subject', 'Ваш запрос: {{lead.category}} {{lead.brand}}',
		'body', E'Здравствуйте, {{client.name}}!\n'
				'Вы спрашивали: {{request.model}} x {{request.qty}}.\n'
				'{{#purchases}}- {{date}} {{category}}{{#brand}} ({{brand}}){{/brand}}: {{budget}} руб.\n{{/purchases}}'
				'{{^purchases}}Вы у нас впервые.\n{{/purchases}}'
				'{{#manager}}{{full_name}}{{/manager}}{{^manager}}Отдел продаж{{/manager}}'),
	jsonb_build_object('delay', '2 days', 'subject', 'Re: {{lead.category}}',
		'body', 'Напоминаем, {{client.name}}. {{manager.full_name}}'),
	jsonb_build_object('delay', '3 days', 'subject', 'Последнее письмо',
		'body', 'Лид {{lead.lead_id}}, приоритет {{lead.priority}}')),
 'three steps over five days'),
('two', '[{"delay": "0", "subject": "first {{lead.lead_id}}", "body": "b"},
		  {"delay": "1 day", "subject": "second {{lead.lead_id}}", "body": "b"}]', NULL),
('later', '[{"delay": "1 day", "subject": "later {{lead.lead_id}}", "body": "b"}]', NULL);
-- a step can be changed, but only to something valid
UPDATE scoring.sequence SET steps = steps || '[{"delay": "1 week", "subject": "{{/x}}", "body": "b"}]'
 WHERE name = 'two';
\echo :LAST_ERROR_SQLSTATE
SELECT name, jsonb_array_length(steps) AS steps, business_days, daily_cap
  FROM scoring.sequence ORDER BY name;

--
-- 2. enroll() errors: unknown sequence (SC012), unknown lead (P0002),
-- closed lead (SC013), unsubscribed or bouncing client (SC014), priority 1
-- (SC010); none of them changes anything
--
SELECT count(pg_temp.lead(id)) AS leads FROM generate_series(21, 25) AS id;
UPDATE scoring.lead SET status = 'won', won_profit = 1000, closed_at = '2026-03-02 09:00+00'
 WHERE lead_id = 21;
UPDATE scoring.lead SET status = 'lost', closed_at = '2026-03-02 09:00+00' WHERE lead_id = 22;
UPDATE scoring.client SET unsubscribed = true WHERE client_id = 23;
UPDATE scoring.client SET bounced = true WHERE client_id = 24;
-- lead 25: Kemppi 100000, priority 1
UPDATE scoring.lead SET brand = 'Kemppi', budget = 100000 WHERE lead_id = 25;
SELECT lead_id, status, priority FROM scoring.lead WHERE lead_id BETWEEN 21 AND 25 ORDER BY 1;

SELECT scoring.enroll(25, 'no_such_sequence', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(999, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(21, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(22, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(23, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(24, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(25, 'demo', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
-- and the direct way in is closed the same way
INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at)
VALUES (25, 'demo', '2026-03-02 10:00+00', '2026-03-02 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS enrollments FROM scoring.enrollment;

--
-- 3. The life of a chain: enroll, step 0 at once with the lead's data,
-- later steps after their delays, done after the last
--
-- lead 10 of client 1, who bought twice before (won leads 101, 102); a
-- lost lead (103) and a purchase after lead 10 (104) are not "previous
-- purchases"
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget,
						  features, status, closed_at)
VALUES (101, '2025-06-10 09:00+00', 1, 'electrodes', 'ESAB', 12000, '{"qty": 100}', 'won', '2025-06-20 09:00+00'),
	   (102, '2025-09-01 09:00+00', 1, 'masks', NULL, 3500, '{}', 'won', '2025-09-02 09:00+00'),
	   (103, '2025-10-01 09:00+00', 1, 'generators', 'Fubag', 90000, '{}', 'lost', '2025-10-05 09:00+00'),
	   (104, '2026-04-01 09:00+00', 1, 'wire', 'ESAB', 2000, '{}', 'won', '2026-04-02 09:00+00');
INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, category, brand,
						  budget, features, status, assignee_id)
VALUES (10, '2026-03-01 12:00+00', 1, 'web', 'email', 'welding', 'Fubag', 50000,
		'{"model": "IRMIG 200", "qty": 2}', 'accepted', 1);

-- what a template can use
SELECT ctx -> 'client' ->> 'name' AS client, ctx -> 'request' AS request,
	   ctx -> 'manager' AS manager, ctx -> 'lead' ->> 'priority' AS priority,
	   ctx -> 'lead' ? 'features' AS lead_has_features
  FROM scoring.lead_context(10) AS ctx;
SELECT p ->> 'lead_id' AS lead_id, p ->> 'date' AS date, p ->> 'category' AS category,
	   p ->> 'brand' AS brand, p ->> 'budget' AS budget, p -> 'request' AS request
  FROM jsonb_array_elements(scoring.lead_context(10) -> 'purchases') AS p;
SELECT scoring.lead_context(999) AS unknown_lead;

SELECT scoring.enroll(10, 'demo', '2026-03-02 10:00+00') AS enrollment_id;
SELECT * FROM enr;
SELECT scoring.run_sequences('2026-03-02 09:59:59+00') AS too_early;
SELECT scoring.run_sequences('2026-03-02 10:00+00') AS step_0;
SELECT * FROM box;
SELECT body FROM scoring.outbox WHERE message_id = 1;
SELECT * FROM enr;
-- nothing twice
SELECT scoring.run_sequences('2026-03-02 10:00+00') AS again,
	   scoring.run_sequences('2026-03-04 09:59:59+00') AS before_step_1;
SELECT scoring.run_sequences('2026-03-04 10:30+00') AS step_1;
SELECT * FROM enr;
SELECT scoring.run_sequences('2026-03-07 10:29+00') AS before_step_2,
	   scoring.run_sequences('2026-03-07 10:30+00') AS step_2;
SELECT * FROM enr;
SELECT scoring.run_sequences('2026-04-01 00:00+00') AS after_the_end;
SELECT message_id AS id, step, subject, created_at, body FROM scoring.outbox ORDER BY 1;

--
-- 4. mark_sent(): sets sent_at once (a second call keeps the first time);
-- an unknown message is P0002
--
SELECT scoring.mark_sent(1, '2026-03-02 10:05+00');
SELECT scoring.mark_sent(1, '2026-03-02 11:00+00');
SELECT scoring.mark_sent(2, '2026-03-04 10:31+00');
SELECT id, sent_at FROM box ORDER BY id;
SELECT scoring.mark_sent(999, '2026-03-02 10:05+00');
\echo :LAST_ERROR_SQLSTATE
-- the mailer's query: what is still to be sent
SELECT id, subject FROM box WHERE sent_at IS NULL ORDER BY id;

--
-- 5. A new enrollment replaces the running one; a failed enroll() leaves
-- it running; a lead without a client can be enrolled
--
SELECT pg_temp.lead(40);
SELECT scoring.enroll(40, 'two', '2026-03-02 10:00+00') AS first;
SELECT scoring.enroll(40, 'no_such_sequence', '2026-03-02 10:30+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(40, 'later', '2026-03-02 11:00+00') AS second;
SELECT * FROM enr WHERE lead_id = 40 ORDER BY id;
-- no client: no address, no client data
INSERT INTO scoring.lead (lead_id, created_at, category, brand, budget, status)
VALUES (41, '2026-03-01 12:00+00', 'welding', 'Fubag', 50000, 'draft');
SELECT scoring.enroll(41, 'demo', '2026-03-02 10:00+00') AS no_client;
SELECT scoring.run_sequences('2026-03-02 12:00+00') AS sent;
SELECT lead_id, step, to_address, subject, body FROM scoring.outbox WHERE lead_id IN (40, 41)
 ORDER BY message_id;

--
-- 6. What stops a chain when it is due: a closed lead (won or lost), a
-- reply (an 'email_in' touch from the client after the chain started),
-- an unsubscribe, a bounce, priority 1; a stopped chain sends nothing
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
SELECT count(pg_temp.lead(id)) AS leads FROM generate_series(31, 39) AS id;
SELECT count(scoring.enroll(id, 'two', '2026-03-02 10:00+00')) AS enrolled
  FROM generate_series(31, 39) AS id;
SELECT scoring.run_sequences('2026-03-02 10:00+00') AS step_0;
UPDATE scoring.lead SET status = 'won', won_profit = 5000, closed_at = '2026-03-02 12:00+00'
 WHERE lead_id = 31;
UPDATE scoring.lead SET status = 'lost', closed_at = '2026-03-02 12:00+00' WHERE lead_id = 32;
INSERT INTO scoring.touch (client_id, at, kind) VALUES (33, '2026-03-02 15:00+00', 'email_in');
UPDATE scoring.client SET unsubscribed = true WHERE client_id = 34;
UPDATE scoring.client SET bounced = true WHERE client_id = 35;
-- priority 1 without the lead trigger (as a replication apply would set
-- it): run_sequences() itself stops the chain
SET session_replication_role = replica;
UPDATE scoring.lead SET priority = 1 WHERE lead_id = 36;
RESET session_replication_role;
-- closed and replied: closed is the reason
UPDATE scoring.lead SET status = 'won', won_profit = 5000, closed_at = '2026-03-02 12:00+00'
 WHERE lead_id = 37;
INSERT INTO scoring.touch (client_id, at, kind) VALUES (37, '2026-03-02 15:00+00', 'email_in');
-- touches that are not a reply: ours, a missed call, a reply from before
-- the chain started, at the very moment it started, after the run, or from
-- another client
INSERT INTO scoring.touch (client_id, manager_id, at, kind) VALUES
	(38, 1, '2026-03-02 11:00+00', 'email_out'),
	(38, 1, '2026-03-02 11:30+00', 'call_missed'),
	(38, NULL, '2026-03-01 15:00+00', 'email_in'),
	(38, NULL, '2026-03-02 10:00+00', 'email_in'),
	(38, NULL, '2026-03-03 10:00:01+00', 'email_in'),
	(1, NULL, '2026-03-02 15:00+00', 'email_in');
-- lead 39: nothing happens
SELECT scoring.run_sequences('2026-03-03 10:00+00') AS step_1;
SELECT id, lead_id, step, state, stop_reason, stopped_at FROM enr ORDER BY id;
SELECT lead_id, string_agg(step::text, ',' ORDER BY step) AS steps_sent
  FROM scoring.outbox GROUP BY lead_id ORDER BY lead_id;
SELECT scoring.run_sequences('2026-03-10 00:00+00') AS later;
-- a stopped chain cannot be restarted for a closed lead
SELECT scoring.enroll(31, 'two', '2026-03-04 00:00+00');
\echo :LAST_ERROR_SQLSTATE

--
-- 7. Priority 1 stops a chain at once (the lead trigger), whether it is
-- set directly or comes from a rescore, and then enrolling fails (SC010)
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
SELECT count(pg_temp.lead(id)) AS leads FROM generate_series(71, 74) AS id;
SELECT count(scoring.enroll(id, 'later', '2026-03-02 10:00+00')) AS enrolled
  FROM generate_series(71, 74) AS id;
-- a direct update of the priority
UPDATE scoring.lead SET priority = 1 WHERE lead_id = 71;
-- a rescore: a bigger budget of a high-margin brand
UPDATE scoring.lead SET brand = 'Kemppi', budget = 100000 WHERE lead_id = 72;
-- a rescore that leaves it below priority 1
UPDATE scoring.lead SET budget = 60000 WHERE lead_id = 73;
SELECT l.lead_id, l.priority, e.state, e.stop_reason, e.stopped_at IS NOT NULL AS stopped_at_set
  FROM scoring.lead l JOIN scoring.enrollment e USING (lead_id)
 WHERE l.lead_id BETWEEN 71 AND 74 ORDER BY 1;
SELECT scoring.enroll(71, 'two', '2026-03-02 11:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.enroll(72, 'two', '2026-03-02 11:00+00');
\echo :LAST_ERROR_SQLSTATE
-- the stopped chain stays stopped when the lead leaves priority 1; a new
-- one can be started then
UPDATE scoring.lead SET priority = 2 WHERE lead_id = 71;
SELECT state, stop_reason FROM scoring.enrollment WHERE lead_id = 71;
SELECT scoring.enroll(71, 'two', '2026-03-02 11:00+00') AS restarted;
SELECT scoring.run_sequences('2026-03-04 00:00+00') AS sent;
SELECT lead_id, step, subject FROM scoring.outbox ORDER BY message_id;

--
-- 8. Business days: a send that falls on Saturday or Sunday in the
-- client's time zone moves to Monday 09:00 there; a run on the weekend
-- sends nothing of a business-day sequence
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.sequence (name, steps, business_days) VALUES
('bd', '[{"delay": "0", "subject": "bd0 {{lead.lead_id}}", "body": "b"},
		 {"delay": "1 day", "subject": "bd1 {{lead.lead_id}}", "body": "b"},
		 {"delay": "1 day", "subject": "bd2 {{lead.lead_id}}", "body": "b"}]', true),
('bd_late', '[{"delay": "12 hours", "subject": "late {{lead.lead_id}}", "body": "b"}]', true);
-- clients in Moscow, except 51 in Vladivostok (UTC+10)
SELECT pg_temp.lead(50), pg_temp.lead(51, tz => 'Asia/Vladivostok'), pg_temp.lead(52),
	   pg_temp.lead(53);
-- Friday 11:00 in Moscow: now
SELECT scoring.enroll(50, 'bd', '2026-03-06 08:00+00') AS e50;
-- Friday 15:00 UTC is Saturday 01:00 in Vladivostok: Monday 09:00 there
SELECT scoring.enroll(51, 'bd', '2026-03-06 15:00+00') AS e51;
-- due Friday 23:00 in Moscow, a weekday
SELECT scoring.enroll(52, 'bd_late', '2026-03-06 08:00+00') AS e52;
-- not a business-day sequence: its second step falls on Saturday and stays
SELECT scoring.enroll(53, 'two', '2026-03-06 08:00+00') AS e53;
SELECT id, lead_id, sequence, step, next_at FROM enr ORDER BY id;
SELECT scoring.run_sequences('2026-03-06 08:00+00') AS friday;
-- step 1 of lead 50 would be Saturday 11:00 in Moscow: Monday 09:00 instead
SELECT id, lead_id, sequence, step, next_at FROM enr ORDER BY id;
-- no run on Friday evening; Saturday: only the every-day sequence
SELECT scoring.run_sequences('2026-03-07 08:00+00') AS saturday;
-- Sunday noon: lead 52 is due (since Friday 20:00 UTC) but nothing is
-- sent; it moves to Monday 09:00 in Moscow
SELECT scoring.run_sequences('2026-03-08 12:00+00') AS sunday;
SELECT id, lead_id, sequence, step, next_at, state FROM enr ORDER BY id;
-- Sunday 23:00 UTC is Monday 09:00 in Vladivostok
SELECT scoring.run_sequences('2026-03-08 23:00+00') AS monday_in_vladivostok;
SELECT scoring.run_sequences('2026-03-09 05:59+00') AS before_nine_in_moscow,
	   scoring.run_sequences('2026-03-09 06:00+00') AS nine_in_moscow;
SELECT id, lead_id, sequence, step, next_at, state FROM enr ORDER BY id;
-- what was sent when, and the day of the week at the client (1 = Monday)
SELECT o.lead_id, o.subject, o.created_at,
	   extract(isodow FROM o.created_at AT TIME ZONE c.time_zone) AS client_dow
  FROM scoring.outbox o JOIN scoring.lead l USING (lead_id) JOIN scoring.client c USING (client_id)
 ORDER BY o.message_id;
-- the move itself
SELECT at, tz, scoring.next_send_time(at, true, tz) AS business, scoring.next_send_time(at, false, tz) AS any_day
  FROM (VALUES ('2026-03-06 20:59:59+00'::timestamptz, 'Europe/Moscow'),
			   ('2026-03-06 21:00+00', 'Europe/Moscow'),
			   ('2026-03-08 20:59:59+00', 'Europe/Moscow'),
			   ('2026-03-08 21:00+00', 'Europe/Moscow'),
			   ('2026-03-06 14:00+00', 'Asia/Vladivostok'),
			   ('2026-03-06 14:00+00', 'America/New_York'),
			   ('2026-03-07 12:00+00', 'America/New_York')) AS v(at, tz);

--
-- 9. Daily cap: at most daily_cap messages of a sequence per manager (the
-- lead's assignee) and day; the rest wait for the next day; other
-- sequences are not counted
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.sequence (name, steps, daily_cap) VALUES
('capped', '[{"delay": "0", "subject": "capped {{lead.lead_id}}", "body": "b"}]', 2);
SELECT pg_temp.lead(60, 1), pg_temp.lead(61, 1), pg_temp.lead(62, 1), pg_temp.lead(63, 2),
	   pg_temp.lead(64, NULL), pg_temp.lead(65, NULL), pg_temp.lead(66, NULL),
	   pg_temp.lead(67, 1);
SELECT count(scoring.enroll(id, 'capped', '2026-03-10 10:00+00')) AS enrolled
  FROM generate_series(60, 66) AS id;
SELECT scoring.enroll(67, 'two', '2026-03-10 10:00+00') AS other_sequence;
SELECT scoring.run_sequences('2026-03-10 10:00+00') AS tuesday;
SELECT scoring.run_sequences('2026-03-10 18:00+00') AS tuesday_evening;
SELECT l.assignee_id, string_agg(o.lead_id::text, ',' ORDER BY o.lead_id) AS sent
  FROM scoring.outbox o JOIN scoring.lead l USING (lead_id)
 GROUP BY 1 ORDER BY 1;
SELECT scoring.run_sequences('2026-03-11 06:00+00') AS wednesday;
SELECT lead_id, created_at FROM scoring.outbox WHERE created_at > '2026-03-10 12:00+00'
 ORDER BY lead_id;
SELECT lead_id, state FROM scoring.enrollment WHERE state = 'active' ORDER BY lead_id;

-- the day is the manager's day (Moscow): 21:00 UTC is already tomorrow
SELECT pg_temp.lead(68, 2), pg_temp.lead(69, 2), pg_temp.lead(70, 2);
SELECT count(scoring.enroll(id, 'capped', '2026-03-11 20:00+00')) AS enrolled
  FROM generate_series(68, 70) AS id;
-- Wednesday 23:00 in Moscow: two of three (and the second step of lead 67,
-- due since 10:00)
SELECT scoring.run_sequences('2026-03-11 20:00+00') AS wednesday_late;
-- Thursday 00:30 in Moscow is a new day of manager 2 (days are the
-- manager's, not the session's), so lead 70 goes now
SELECT scoring.run_sequences('2026-03-11 21:30+00') AS thursday_in_moscow;
SELECT scoring.run_sequences('2026-03-12 00:30+00') AS thursday_utc;
SELECT lead_id, created_at FROM scoring.outbox WHERE lead_id >= 68 ORDER BY lead_id;

--
-- 10. A chain whose sequence was shortened under it, and a rename
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.sequence (name, steps) VALUES
('editable', '[{"delay": "0", "subject": "e0 {{lead.lead_id}}", "body": "b"},
			   {"delay": "1 day", "subject": "e1 {{lead.lead_id}}", "body": "b"}]');
SELECT pg_temp.lead(75), pg_temp.lead(76);
SELECT scoring.enroll(75, 'editable', '2026-03-02 10:00+00') AS e75;
SELECT scoring.run_sequences('2026-03-02 10:00+00') AS step_0;
SELECT scoring.enroll(76, 'two', '2026-03-03 10:00+00') AS e76;
UPDATE scoring.sequence SET steps = '[{"delay": "0", "subject": "e0 {{lead.lead_id}}", "body": "b"}]'
 WHERE name = 'editable';
-- step 1 of lead 75 is gone: its chain is done, lead 76's message goes
SELECT scoring.run_sequences('2026-03-03 10:00+00') AS sent;
SELECT lead_id, state IN ('done', 'stopped') AS finished FROM scoring.enrollment ORDER BY lead_id;
SELECT lead_id, step, subject FROM scoring.outbox ORDER BY message_id;
-- a rename follows into the enrollments; a sequence in use cannot go
UPDATE scoring.sequence SET name = 'two_renamed' WHERE name = 'two';
SELECT lead_id, sequence FROM scoring.enrollment WHERE lead_id = 76;
DELETE FROM scoring.sequence WHERE name = 'two_renamed';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.sequence SET name = 'two' WHERE name = 'two_renamed';

--
-- 11. Without the shipped chains: a priority-5 lead goes to automation
-- ('auto') and is not enrolled (there is no polite_decline), without error
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget)
VALUES (89, '2026-03-01 12:00+00', 1, 'welding', 'Fubag', 100);
SELECT lead_id, priority, status FROM scoring.lead WHERE lead_id = 89;
SELECT count(*) AS enrollments FROM scoring.enrollment;
-- nor is a refused lead whose reason has no chain
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'out_of_stock' WHERE lead_id = 75;
SELECT count(*) AS enrollments FROM scoring.enrollment;

--
-- 12. install_defaults(): 33 refusal reasons, each with its own chain of
-- three business-day steps, and the polite decline; every template
-- renders; a second call changes nothing and keeps the user's edits
--
SELECT scoring.install_defaults() AS reasons;
SELECT count(*) AS reasons, count(DISTINCT sequence) AS chains,
	   count(*) FILTER (WHERE sequence = reason) AS own_chain
  FROM scoring.refusal_reason;
SELECT jsonb_array_length(steps) AS steps, business_days, count(*)
  FROM scoring.sequence
 WHERE name IN (SELECT sequence FROM scoring.refusal_reason) OR name = 'polite_decline'
 GROUP BY 1, 2 ORDER BY 1;
SELECT name, steps -> 0 ->> 'delay' AS delay_0, steps -> 1 ->> 'delay' AS delay_1,
	   steps -> 2 ->> 'delay' AS delay_2
  FROM scoring.sequence WHERE name IN ('out_of_stock', 'polite_decline') ORDER BY name;
-- every shipped template, rendered for lead 10: none fails, none is empty,
-- every one greets the client and signs with the manager's name
SELECT count(*) AS rendered,
	   count(*) FILTER (WHERE subject <> '' AND body LIKE 'Здравствуйте, ООО «Сварка»!%'
						AND body LIKE '%Менеджер Один') AS complete
  FROM scoring.sequence s, jsonb_array_elements(s.steps) AS st,
	   LATERAL (SELECT scoring.render(st ->> 'subject', scoring.lead_context(10)) AS subject,
					   scoring.render(st ->> 'body', scoring.lead_context(10)) AS body) r
 WHERE s.name IN (SELECT sequence FROM scoring.refusal_reason) OR s.name = 'polite_decline';
SELECT scoring.render(steps -> 0 ->> 'subject', scoring.lead_context(10)) AS subject,
	   scoring.render(steps -> 0 ->> 'body', scoring.lead_context(10)) AS body
  FROM scoring.sequence WHERE name = 'out_of_stock';
-- without a manager and without purchases
SELECT scoring.render(steps -> 0 ->> 'body', scoring.lead_context(41)) AS body
  FROM scoring.sequence WHERE name = 'polite_decline';

-- the user edits a chain, unlinks a reason and deletes another one
UPDATE scoring.sequence
   SET steps = '[{"delay": "1 hour", "subject": "Edited", "body": "Our own text"}]'
 WHERE name = 'out_of_stock';
UPDATE scoring.refusal_reason SET sequence = NULL WHERE reason = 'no_response';
DELETE FROM scoring.refusal_reason WHERE reason = 'tender_lost';
DELETE FROM scoring.sequence WHERE name = 'tender_lost';
SELECT scoring.install_defaults() AS reasons_again;
SELECT count(*) AS reasons FROM scoring.refusal_reason;
SELECT count(*) AS shipped_sequences FROM scoring.sequence
 WHERE name IN (SELECT reason FROM scoring.refusal_reason) OR name = 'polite_decline';
SELECT name, steps FROM scoring.sequence WHERE name = 'out_of_stock';
SELECT reason, sequence FROM scoring.refusal_reason
 WHERE reason IN ('no_response', 'tender_lost', 'out_of_stock') ORDER BY reason;
SELECT scoring.install_defaults() AS reasons_third_time;

--
-- 13. A lead refused with a reason is enrolled in that reason's chain (the
-- lead trigger, at the transaction's time); without a chain, nothing
-- happens and the update succeeds
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, category, brand,
						  budget, features, status, assignee_id)
VALUES (80, '2026-03-01 12:00+00', 1, 'web', 'email', 'compressors', 'Fubag', 50000,
		'{"model": "AIRMASTER 50"}', 'accepted', 1);
SELECT count(pg_temp.lead(id)) AS leads FROM generate_series(81, 86) AS id;
BEGIN;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'price_too_high' WHERE lead_id = 80;
SELECT lead_id, sequence, step, state, started_at = now() AS started_now
  FROM scoring.enrollment;
COMMIT;
-- refused without a reason, with a reason without a chain, with a reason
-- that does not exist
UPDATE scoring.lead SET status = 'refused' WHERE lead_id = 81;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'no_response' WHERE lead_id = 82;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'no_such_reason' WHERE lead_id = 83;
-- refused, but the client unsubscribed: no chain, no error
UPDATE scoring.client SET unsubscribed = true WHERE client_id = 84;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'out_of_stock' WHERE lead_id = 84;
-- refused, but priority 1: no chain, no error
UPDATE scoring.lead SET priority = 1 WHERE lead_id = 85;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'out_of_stock' WHERE lead_id = 85;
-- refused while another chain runs: the reason's chain replaces it
SELECT scoring.enroll(86, 'later', '2026-03-02 10:00+00') AS running;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'delivery_too_long' WHERE lead_id = 86;
-- inserted as refused (a CRM importing a closed lead)
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget, status,
						  refusal_reason)
VALUES (87, '2026-03-01 12:00+00', 1, 'welding', 'Fubag', 50000, 'refused', 'needs_certificate');
SELECT l.lead_id, l.status, l.refusal_reason, e.sequence, e.state, e.stop_reason
  FROM scoring.lead l LEFT JOIN scoring.enrollment e USING (lead_id)
 WHERE l.lead_id BETWEEN 80 AND 87 ORDER BY l.lead_id, e.enrollment_id;
-- the chain's first message, with the lead's data and the edited chain
-- of out_of_stock not involved
SELECT scoring.run_sequences((SELECT next_at FROM scoring.enrollment WHERE lead_id = 80)) >= 1 AS sent;
SELECT to_address, subject, body FROM scoring.outbox WHERE lead_id = 80;

--
-- 14. A priority-5 lead handed to automation ('auto') is enrolled in the
-- setting auto_sequence (polite_decline by default); a refusal rule makes
-- a lead priority 5 too
--
SET client_min_messages = warning;
TRUNCATE scoring.outbox, scoring.enrollment RESTART IDENTITY;
RESET client_min_messages;
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('junk', '{"category": "junk"}');
INSERT INTO scoring.client (client_id, name, attrs)
SELECT id, 'Клиент ' || id, jsonb_build_object('email', 'c' || id || '@example.ru')
  FROM generate_series(91, 95) AS id;
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget) VALUES
	(91, '2026-03-01 12:00+00', 91, 'welding', 'Fubag', 100),			-- below the bands
	(92, '2026-03-01 12:00+00', 92, 'junk', 'Kemppi', 1000000),		-- refused by a rule
	(93, '2026-03-01 12:00+00', 93, 'welding', 'Fubag', 50000);		-- priority 2: a person
UPDATE scoring.client SET unsubscribed = true WHERE client_id = 94;
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget)
VALUES (94, '2026-03-01 12:00+00', 94, 'welding', 'Fubag', 100);	-- unsubscribed
INSERT INTO scoring.setting (name, value) VALUES ('auto_sequence', '"two"');
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget)
VALUES (95, '2026-03-01 12:00+00', 95, 'welding', 'Fubag', 100);	-- another chain
UPDATE scoring.setting SET value = 'null' WHERE name = 'auto_sequence';
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget)
VALUES (96, '2026-03-01 12:00+00', 1, 'welding', 'Fubag', 100);	-- no chain at all
DELETE FROM scoring.setting WHERE name = 'auto_sequence';
SELECT l.lead_id, l.priority, l.status, e.sequence, e.state
  FROM scoring.lead l LEFT JOIN scoring.enrollment e USING (lead_id)
 WHERE l.lead_id BETWEEN 91 AND 96 ORDER BY l.lead_id;
SELECT scoring.run_sequences((SELECT max(next_at) FROM scoring.enrollment)) AS sent;
SELECT lead_id, subject, body FROM scoring.outbox ORDER BY lead_id;

SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting,
	scoring.manager, scoring.route, scoring.assignment_log,
	scoring.sequence, scoring.enrollment, scoring.outbox,
	scoring.refusal_reason, scoring.touch, scoring.claim, scoring.claim_history
	RESTART IDENTITY CASCADE;
RESET client_min_messages;
