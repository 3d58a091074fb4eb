--
-- test/pgtap/sequences_guard.sql
--	A priority-1 lead is worked by a person: no path gives it an active
--	enrollment (SPEC §1.3, §3, §6).  enroll(), a direct INSERT (plain,
--	ON CONFLICT, several rows, COPY, MERGE), an UPDATE of lead_id or of
--	state back to 'active', and all of them in one statement together with
--	the change of priority; a rescore that makes a lead priority 1 stops
--	its chain.  Every refusal is SQLSTATE SC010 and stores nothing.
--
--	Priorities come from a hand-written model (p_win = 0.5 for every
--	lead): Fubag (margin 0.2) 50000 has expected profit 5000, priority 2;
--	Kemppi (margin 1) 100000 has 50000, priority 1.
--
BEGIN;
SELECT plan(40);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Kemppi', 1.0);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won, intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.client (client_id, name) SELECT i, 'client ' || i FROM generate_series(1, 9) AS i;
INSERT INTO scoring.sequence (name, steps) VALUES
('two', '[{"delay": "0", "subject": "a {{lead.lead_id}}", "body": "b"},
		  {"delay": "1 day", "subject": "b {{lead.lead_id}}", "body": "b"}]');

-- leads 1..9 of clients 1..9: 1, 4, 5, 7, 8, 9 priority 2; 2, 3, 6 priority 1
INSERT INTO scoring.lead (lead_id, created_at, client_id, category, brand, budget, status)
SELECT i, '2026-03-01 12:00+00', i, 'welding',
	   CASE WHEN i IN (2, 6) THEN 'Kemppi' ELSE 'Fubag' END,
	   CASE WHEN i IN (2, 6) THEN 100000 ELSE 50000 END, 'accepted'
  FROM generate_series(1, 9) AS i;
-- lead 3: enrolled, then priority 1 (its chain is stopped)
SELECT ok(scoring.enroll(1, 'two', '2026-03-02 10:00+00') > 0, 'lead 1 is enrolled');
SELECT ok(scoring.enroll(3, 'two', '2026-03-02 10:00+00') > 0, 'lead 3 is enrolled');
UPDATE scoring.lead SET brand = 'Kemppi', budget = 100000 WHERE lead_id = 3;

-- the enrollments of a lead as "state/stop_reason", oldest first
CREATE FUNCTION pg_temp.chains(id bigint) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(state || coalesce('/' || stop_reason, ''), ','
							   ORDER BY enrollment_id), '')
	  FROM scoring.enrollment WHERE lead_id = id
$$;

SELECT is((SELECT string_agg(lead_id || ':' || priority, ' ' ORDER BY lead_id)
			 FROM scoring.lead),
		  '1:2 2:1 3:1 4:2 5:2 6:1 7:2 8:2 9:2', 'the priorities are as planned');
SELECT is(pg_temp.chains(1), 'active', 'lead 1 (priority 2) has an active chain');
SELECT is(pg_temp.chains(3), 'stopped/priority_1', 'lead 3 turned priority 1: its chain stopped');

--
-- enroll()
--
SELECT throws_ok($$SELECT scoring.enroll(2, 'two', '2026-03-02 10:00+00')$$,
				 'SC010', 'lead 2 is priority 1: automation is forbidden',
				 'enroll() of a priority-1 lead fails');
SELECT throws_ok($$SELECT scoring.enroll(3, 'two', '2026-03-02 10:00+00')$$,
				 'SC010', NULL, 'enroll() of a lead that became priority 1 fails');

--
-- direct INSERTs
--
SELECT throws_ok($$INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at)
				   VALUES (2, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00')$$,
				 'SC010', NULL, 'INSERT of an enrollment (state by default) is refused');
SELECT throws_ok($$INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at, state)
				   VALUES (2, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00', 'active')$$,
				 'SC010', NULL, 'INSERT of an active enrollment is refused');
SELECT throws_ok($$INSERT INTO scoring.enrollment (lead_id, sequence, step, next_at, started_at)
				   VALUES (2, 'two', 1, '2026-03-02 10:00+00', '2026-03-02 10:00+00')
				   ON CONFLICT DO NOTHING$$,
				 'SC010', NULL, 'INSERT ... ON CONFLICT DO NOTHING is refused, not skipped');
SELECT throws_ok($$INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at)
				   SELECT i, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00'
				     FROM generate_series(4, 6) AS i$$,
				 'SC010', NULL, 'a multi-row INSERT with one priority-1 lead among them is refused');
SELECT is(pg_temp.chains(4) || pg_temp.chains(5), '',
		  '... and none of its rows is stored');
SELECT throws_ok($$COPY scoring.enrollment (lead_id, sequence, next_at, started_at)
				   FROM PROGRAM 'printf ''2\ttwo\t2026-03-02 10:00+00\t2026-03-02 10:00+00\n'''$$,
				 'SC010', NULL, 'COPY of an enrollment is refused');
SELECT throws_ok($$MERGE INTO scoring.enrollment e
				   USING (VALUES (2::bigint)) AS v(lead_id) ON e.lead_id = v.lead_id
				   WHEN NOT MATCHED THEN INSERT (lead_id, sequence, next_at, started_at)
				        VALUES (v.lead_id, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00')$$,
				 'SC010', NULL, 'MERGE ... INSERT of an enrollment is refused');
SELECT is(pg_temp.chains(2), '', 'lead 2 has no enrollment at all');

-- rows that are not active are history, and may be written
SELECT lives_ok($$INSERT INTO scoring.enrollment (lead_id, sequence, step, next_at, started_at,
												  state, stop_reason, stopped_at)
				  VALUES (2, 'two', 2, '2026-03-01 10:00+00', '2026-02-28 10:00+00', 'done',
						  NULL, NULL),
						 (2, 'two', 1, '2026-03-01 10:00+00', '2026-02-28 10:00+00', 'stopped',
						  'replied', '2026-03-01 10:00+00')$$,
				'a done or stopped enrollment of a priority-1 lead can be stored (history)');

--
-- UPDATEs
--
SELECT throws_ok($$UPDATE scoring.enrollment SET state = 'active', stop_reason = NULL,
						  stopped_at = NULL
				   WHERE lead_id = 3$$,
				 'SC010', NULL, 'UPDATE of a stopped chain of a priority-1 lead back to active is refused');
SELECT throws_ok($$UPDATE scoring.enrollment SET state = 'active' WHERE lead_id = 2 AND state = 'done'$$,
				 'SC010', NULL, 'UPDATE of a done chain of a priority-1 lead back to active is refused');
SELECT throws_ok($$UPDATE scoring.enrollment SET lead_id = 2 WHERE lead_id = 1$$,
				 'SC010', NULL, 'UPDATE moving an active chain to a priority-1 lead is refused');
SELECT throws_ok($$UPDATE scoring.enrollment SET lead_id = 6, step = 0 WHERE lead_id = 1$$,
				 'SC010', NULL, '... also together with other columns');
SELECT throws_ok($$UPDATE scoring.enrollment SET lead_id = 2, state = 'active'
				   WHERE lead_id = 3$$,
				 'SC010', NULL, 'UPDATE moving a stopped chain to another priority-1 lead and reactivating it is refused');
SELECT throws_ok($$MERGE INTO scoring.enrollment e
				   USING (VALUES (3::bigint)) AS v(lead_id) ON e.lead_id = v.lead_id
				   WHEN MATCHED THEN UPDATE SET state = 'active'$$,
				 'SC010', NULL, 'MERGE ... UPDATE of a chain of a priority-1 lead to active is refused');
SELECT is(pg_temp.chains(1) || ' ' || pg_temp.chains(2) || ' ' || pg_temp.chains(3),
		  'active done,stopped/replied stopped/priority_1',
		  'nothing was changed by the refused updates');
-- moving a stopped chain to a priority-1 lead keeps it stopped: allowed
SELECT lives_ok($$UPDATE scoring.enrollment SET lead_id = 6 WHERE lead_id = 3$$,
				'a stopped chain may be moved to a priority-1 lead (it stays stopped)');
UPDATE scoring.enrollment SET lead_id = 3 WHERE lead_id = 6;

--
-- the change of priority and the enrollment in one statement: the lead
-- trigger stops the chain at the end of the statement
--
SELECT lives_ok($$WITH p AS (UPDATE scoring.lead SET priority = 1 WHERE lead_id = 4 RETURNING lead_id)
				  INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at)
				  SELECT 4, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00'$$,
				'priority 1 and an INSERT in one statement ...');
SELECT is(pg_temp.chains(4), 'stopped/priority_1', '... leave the chain stopped');
SELECT lives_ok($$WITH e AS (INSERT INTO scoring.enrollment (lead_id, sequence, next_at, started_at)
							  VALUES (5, 'two', '2026-03-02 10:00+00', '2026-03-02 10:00+00')
							  RETURNING lead_id)
				  UPDATE scoring.lead SET priority = 1 WHERE lead_id = (SELECT lead_id FROM e)$$,
				'an INSERT and priority 1 in one statement (the other way round) ...');
SELECT is(pg_temp.chains(5), 'stopped/priority_1', '... leave the chain stopped');
SELECT ok(scoring.enroll(7, 'two', '2026-03-02 10:00+00') > 0, 'lead 7 is enrolled');
UPDATE scoring.enrollment SET state = 'stopped', stop_reason = 'replied' WHERE lead_id = 7;
SELECT lives_ok($$WITH p AS (UPDATE scoring.lead SET priority = 1 WHERE lead_id = 7 RETURNING lead_id)
				  UPDATE scoring.enrollment SET state = 'active', stop_reason = NULL
				   WHERE lead_id = 7$$,
				'priority 1 and reactivating a chain in one statement ...');
SELECT is(pg_temp.chains(7), 'stopped/priority_1', '... leave the chain stopped');

--
-- a rescore (new bands, rescore()) that makes a lead priority 1 stops its
-- chain; the messages already written stay, no more are written
--
SELECT ok(scoring.enroll(8, 'two', '2026-03-02 10:00+00') > 0, 'lead 8 is enrolled');
SELECT ok(scoring.enroll(9, 'two', '2026-03-02 10:00+00') > 0, 'lead 9 is enrolled');
SELECT is(scoring.run_sequences('2026-03-02 10:00+00'), 3, 'leads 1, 8 and 9 get step 0');
UPDATE scoring.lead SET budget = 80000 WHERE lead_id = 8;
UPDATE scoring.priority_band SET min_expected_profit = 7000 WHERE priority = 1;
SELECT ok(scoring.rescore() > 0, 'rescore() with the new bands');
SELECT is((SELECT priority FROM scoring.lead WHERE lead_id = 8), 1::smallint,
		  'lead 8 (expected 8000) is priority 1 now');
SELECT is(pg_temp.chains(8), 'stopped/priority_1', 'its chain stopped');
SELECT is(scoring.run_sequences('2026-03-04 00:00+00'), 2, 'the next run sends step 1 to leads 1 and 9 only');
SELECT is((SELECT string_agg(lead_id || ':' || step, ' ' ORDER BY lead_id, step) FROM scoring.outbox),
		  '1:0 1:1 8:0 9:0 9:1', 'lead 8 got step 0 before it turned priority 1, nothing after');
SELECT throws_ok($$SELECT scoring.enroll(8, 'two', '2026-03-04 00:00+00')$$,
				 'SC010', NULL, 'and it cannot be enrolled again');

SELECT * FROM finish();
ROLLBACK;
