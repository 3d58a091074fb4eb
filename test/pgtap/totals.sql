--
-- The totals behind forecast_monthly and manager_plan (SPEC §5, §6): kept
-- by statement triggers on scoring.lead, they must give exactly what the
-- leads give, in the session's time zone, whatever the leads went through:
-- routing, hand edits, closes, moved dates, deletes, skipped ON CONFLICT
-- rows, rolled-back savepoints; and after compact_totals(),
-- rebuild_totals() and TRUNCATE.
--
-- Runs in a fresh database with pgtap and scoring; changes nothing (ROLLBACK).
--
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL scoring.now = '2026-03-31 12:00+00';
SELECT plan(44);

-- p_win 0.5 for every lead: forecast = 0.1 x budget with brand B
INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.manager (manager_id, full_name, tier)
SELECT m, 'Junior ' || m, 'junior' FROM generate_series(1, 4) AS m;
INSERT INTO scoring.route (position, condition, tier) VALUES (1, '{}', NULL);
SELECT scoring.heartbeat(m, false, '2026-03-31 11:59+00') FROM generate_series(1, 4) AS m;

-- What the views gave before the totals: the same numbers from the leads
CREATE TEMP VIEW raw_forecast AS
	SELECT date_trunc('month', l.created_at)::date AS month, count(*) AS leads,
		   coalesce(sum(l.forecast_profit), 0) AS expected_profit,
		   coalesce(sum(l.won_profit) FILTER (WHERE l.status = 'won'), 0) AS won_profit,
		   count(*) FILTER (WHERE l.status NOT IN ('won', 'lost', 'refused')) AS open_leads,
		   coalesce(sum(l.forecast_profit) FILTER (
				WHERE l.status NOT IN ('won', 'lost', 'refused')), 0) AS open_expected_profit,
		   CASE WHEN bool_and(l.status IN ('won', 'lost', 'refused'))
					 AND sum(l.forecast_profit) > 0
				THEN round(coalesce(sum(l.won_profit) FILTER (WHERE l.status = 'won'), 0)
						   / sum(l.forecast_profit), 4) END AS accuracy
	  FROM scoring.lead l GROUP BY 1;
CREATE TEMP VIEW raw_plan AS
	SELECT date_trunc('month', l.created_at)::date AS month, l.assignee_id AS manager_id,
		   count(*) AS leads, coalesce(sum(l.forecast_profit), 0) AS plan,
		   coalesce(sum(l.won_profit) FILTER (WHERE l.status = 'won'), 0) AS won_profit
	  FROM scoring.lead l WHERE l.assignee_id IS NOT NULL GROUP BY 1, 2;

-- Rows where the views and the leads disagree, in each of these time
-- zones: whole hours, half and quarter hours, the extremes, DST
CREATE FUNCTION pg_temp.disagreements() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	zone text;
	n bigint := 0;
	k bigint;
BEGIN
	FOREACH zone IN ARRAY ARRAY['UTC', 'Europe/Moscow', 'Asia/Kolkata', 'Asia/Kathmandu',
								'America/St_Johns', 'Pacific/Chatham', 'Pacific/Kiritimati',
								'Etc/GMT+12', 'America/Los_Angeles', 'Australia/Lord_Howe']
	LOOP
		PERFORM set_config('TimeZone', zone, true);
		SELECT (SELECT count(*) FROM (
					(SELECT month, leads, expected_profit, won_profit, open_leads,
							open_expected_profit, accuracy FROM scoring.forecast_monthly
					 EXCEPT ALL SELECT * FROM raw_forecast)
					UNION ALL
					(SELECT * FROM raw_forecast
					 EXCEPT ALL SELECT month, leads, expected_profit, won_profit, open_leads,
									   open_expected_profit, accuracy
								  FROM scoring.forecast_monthly)) f)
			 + (SELECT count(*) FROM (
					(SELECT month, manager_id, leads, plan, won_profit FROM scoring.manager_plan
					 EXCEPT ALL SELECT * FROM raw_plan)
					UNION ALL
					(SELECT * FROM raw_plan
					 EXCEPT ALL SELECT month, manager_id, leads, plan, won_profit
								  FROM scoring.manager_plan)) p)
		  INTO k;
		n := n + k;
	END LOOP;
	PERFORM set_config('TimeZone', 'UTC', true);
	RETURN n;
END;
$$;

-- The buckets
SELECT is(scoring.total_bucket('2026-03-17 09:41:13+00'), '2026-03-01 12:00+00',
		  'mid-month: the month''s one bucket, named 12 hours after its UTC start');
SELECT is(scoring.total_bucket('2026-03-01 12:00+00'), '2026-03-01 12:00+00',
		  'the month bucket starts 12 hours after the UTC month');
SELECT is(scoring.total_bucket('2026-03-01 11:59:59.999999+00'), '2026-03-01 11:45+00',
		  'just before it: a quarter hour');
SELECT is(scoring.total_bucket('2026-03-31 09:59:59.999999+00'), '2026-03-01 12:00+00',
		  'the month bucket ends 14 hours before the next UTC month');
SELECT is(scoring.total_bucket('2026-03-31 10:00+00'), '2026-03-31 10:00+00',
		  'from there on: quarter hours');
SELECT is(scoring.total_bucket('2026-12-31 23:59+00'), '2026-12-31 23:45+00',
		  'the year''s last quarter hour');
SELECT is(scoring.total_bucket('1969-12-31 23:59+00'), '1969-12-31 23:45+00',
		  'before 2000 and 1970 the floor is still down');
SELECT is(scoring.total_bucket('infinity'), 'infinity'::timestamptz, 'infinity stays infinity');

-- Every zone PostgreSQL knows, every quarter hour's first and last moment
-- within 15 hours of a month's start in 2026: the bucket is in the
-- moment's month
SELECT is((SELECT count(*)
			 FROM pg_timezone_names z,
				  generate_series(1, 12) AS mo,
				  generate_series(-60, 59) AS q,
				  (VALUES (interval '0'), (interval '15 minutes' - interval '1 microsecond')) e(d),
				  LATERAL (SELECT make_timestamptz(2026, mo, 1, 0, 0, 0, 'UTC')
								  + q * interval '15 minutes' + e.d AS t) m
			WHERE date_trunc('month', m.t, z.name)
				  <> date_trunc('month', scoring.total_bucket(m.t), z.name)),
		  0::bigint,
		  'in every time zone a bucket lies in one month');

-- 3,000 leads around the edges of Feb..Apr 2026, half of them routed
SELECT setseed(0.27);
CREATE TEMP TABLE moments AS
	SELECT i, make_timestamptz(2026, 2 + i % 3, 1, 0, 0, 0, 'UTC')
			  + (random() * 60 - 30) * interval '1 hour' AS t,
		   round((1000 + random() * 200000)::numeric, -2) AS budget
	  FROM generate_series(1, 3000) AS i;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, t, 'B', budget, CASE WHEN i % 2 = 0 THEN 'new' ELSE 'draft' END
  FROM moments ORDER BY i;
SELECT is((SELECT count(*) FROM scoring.lead WHERE assignee_id IS NOT NULL), 1500::bigint,
		  'the routed half has managers');
SELECT is((SELECT sum(leads) FROM scoring.lead_totals), 3000::numeric,
		  'the totals count 3,000 leads');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after inserts the views equal the leads');

-- one statement inserting a single lead, and a no-op update
INSERT INTO scoring.lead (lead_id, created_at, brand, budget)
VALUES (3001, '2026-03-15 12:00+00', 'B', 5000);
UPDATE scoring.lead SET features = '{"x": 1}' WHERE lead_id <= 100;
SELECT is(pg_temp.disagreements(), 0::bigint, 'a single insert and an update of other columns');

-- closes: won with a profit, lost, refused
UPDATE scoring.lead SET status = 'won', won_profit = budget * 0.2, closed_at = created_at
 WHERE lead_id % 7 = 0;
UPDATE scoring.lead SET status = 'lost', closed_at = created_at WHERE lead_id % 7 = 1;
UPDATE scoring.lead SET status = 'refused', refusal_reason = 'price' WHERE lead_id % 7 = 2;
SELECT is(pg_temp.disagreements(), 0::bigint, 'after wins, losses and refusals');

-- hand edits: moved to another manager, unassigned, dates moved across months
UPDATE scoring.lead SET assignee_id = 1 + lead_id % 4 WHERE lead_id % 11 = 3;
UPDATE scoring.lead SET assignee_id = NULL, status = 'queued'
 WHERE lead_id % 13 = 4 AND status = 'assigned';
UPDATE scoring.lead SET created_at = created_at + interval '20 hours' WHERE lead_id % 5 = 0;
UPDATE scoring.lead SET won_profit = won_profit + 1 WHERE status = 'won' AND lead_id % 3 = 0;
SELECT is(pg_temp.disagreements(), 0::bigint, 'after moves, unassignments and shifted dates');

-- a closed month: every lead of Feb closed, so accuracy and error appear
UPDATE scoring.lead SET status = 'lost', closed_at = created_at
 WHERE status NOT IN ('won', 'lost', 'refused')
   AND created_at < '2026-02-15 00:00+00';
SELECT ok((SELECT accuracy IS NOT NULL AND error = accuracy - 1 FROM scoring.forecast_monthly
			WHERE month = '2026-01-01'),
		  'a closed month has an accuracy and an error');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after closing a month');

-- rows that never land: ON CONFLICT DO NOTHING and a rolled-back savepoint
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, '2026-03-10 00:00+00', 'B', 9000, 'new' FROM generate_series(2990, 3010) AS i
ON CONFLICT (lead_id) DO NOTHING;
SAVEPOINT s;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, '2026-03-11 00:00+00', 'B', 7000, 'new' FROM generate_series(5001, 5100) AS i;
DELETE FROM scoring.lead WHERE lead_id < 50;
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT sum(leads) FROM scoring.lead_totals), 3010::numeric,
		  '9 new leads from the ON CONFLICT insert, none from the savepoint');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after skipped and rolled-back rows');

-- an upsert that updates: the update's transition tables count too
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7, '2026-04-01 03:00+00', 'B', 123400, 'draft')
ON CONFLICT (lead_id) DO UPDATE SET created_at = excluded.created_at, status = 'lost';
SELECT is(pg_temp.disagreements(), 0::bigint, 'after INSERT ... ON CONFLICT DO UPDATE');

-- deletes
DELETE FROM scoring.lead WHERE lead_id % 17 = 5;
SELECT is(pg_temp.disagreements(), 0::bigint, 'after deletes');

-- forecast_profit edited by hand (a correction): plans follow
UPDATE scoring.lead SET forecast_profit = forecast_profit * 2 WHERE lead_id % 19 = 6;
SELECT is(pg_temp.disagreements(), 0::bigint, 'after a forecast correction');

-- compaction folds the deltas into one row per bucket and assignee
SELECT cmp_ok(scoring.compact_totals(), '>', 0::bigint, 'compact_totals() folds deltas');
SELECT is((SELECT count(*) FROM scoring.lead_totals WHERE NOT compacted), 0::bigint,
		  'no delta is left');
SELECT is((SELECT count(*) FROM (SELECT bucket, assignee_id FROM scoring.lead_totals
								  GROUP BY 1, 2 HAVING count(*) > 1) d),
		  0::bigint, 'one row per bucket and assignee');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after compaction');
SELECT is(scoring.compact_totals(), 0::bigint, 'a second compaction finds nothing');

-- new changes are deltas again, next to the compacted rows
UPDATE scoring.lead SET status = 'won', won_profit = 100 WHERE lead_id = 3001;
SELECT is((SELECT count(*) FROM scoring.lead_totals WHERE NOT compacted), 1::bigint,
		  'closing one lead appends one delta (its old and new row sum in one group)');
SELECT is(pg_temp.disagreements(), 0::bigint, 'changes after compaction');

-- 2,000 single-row statements in one transaction append 2,000 deltas
CREATE TEMP TABLE deltas_before AS
	SELECT count(*) AS n FROM scoring.lead_totals WHERE NOT compacted;
DO $$
BEGIN
	FOR i IN 1..2000 LOOP
		INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
		VALUES (10000 + i, '2026-03-20 10:00+00', 'B', 1000 + i, 'draft');
	END LOOP;
END;
$$;
SELECT is((SELECT count(*) FROM scoring.lead_totals WHERE NOT compacted)
		  - (SELECT n FROM deltas_before), 2000::bigint,
		  'one delta per single-row statement, none updated in place');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after 2,000 single-row inserts');

-- rebuild from the leads after a load that bypassed the triggers
ALTER TABLE scoring.lead DISABLE TRIGGER lead_totals_insert;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, '2026-02-20 00:00+00', 'B', 4000, 'draft' FROM generate_series(6001, 6050) AS i;
ALTER TABLE scoring.lead ENABLE TRIGGER lead_totals_insert;
SELECT isnt(pg_temp.disagreements(), 0::bigint, 'a load without the trigger leaves the totals behind');
SELECT cmp_ok(scoring.rebuild_totals(), '>', 0::bigint, 'rebuild_totals() writes rows');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after rebuild_totals()');

-- The deltas are stored without an INSERT while lead_totals is as the
-- extension made it; an index of the user's on it is kept all the same
CREATE INDEX lead_totals_user_idx ON scoring.lead_totals (leads);
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, '2026-03-21 10:00+00', 'B', 5000, 'draft' FROM generate_series(7001, 7003) AS i;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7004, '2026-03-21 10:00+00', 'B', 5000, 'draft');
CREATE TEMP TABLE heap_deltas AS
	SELECT leads, count(*) AS n FROM scoring.lead_totals WHERE NOT compacted GROUP BY leads;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM scoring.lead_totals WHERE leads = 3 AND NOT compacted),
		  (SELECT n FROM heap_deltas WHERE leads = 3),
		  'a user''s index on lead_totals finds the delta of 3 leads');
SELECT is((SELECT count(*) FROM scoring.lead_totals WHERE leads = 1 AND NOT compacted),
		  (SELECT n FROM heap_deltas WHERE leads = 1),
		  'and every delta of one lead');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX scoring.lead_totals_user_idx;
-- a partial index of the user's that does take deltas (WHERE NOT compacted)
-- is kept too: only indexes WHERE compacted are known to take none
CREATE INDEX lead_totals_user_open_idx ON scoring.lead_totals (bucket) WHERE NOT compacted;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7005, '2026-03-21 11:00+00', 'B', 5000, 'draft');
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
CREATE TEMP TABLE heap_open_deltas AS
	SELECT count(*) AS n FROM scoring.lead_totals
	 WHERE NOT compacted AND bucket = scoring.total_bucket('2026-03-21 11:00+00');
RESET enable_indexscan;
SET LOCAL enable_seqscan = off;
SELECT is((SELECT count(*) FROM scoring.lead_totals
			WHERE NOT compacted AND bucket = scoring.total_bucket('2026-03-21 11:00+00')),
		  (SELECT n FROM heap_open_deltas),
		  'a user''s index WHERE NOT compacted finds every delta of the bucket');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX scoring.lead_totals_user_open_idx;

-- A trigger of the user's on lead_totals: the deltas go through an INSERT,
-- which fires it; without it, they are stored directly again
CREATE TEMP TABLE user_trigger_saw (leads bigint);
CREATE FUNCTION public.totals_user_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO user_trigger_saw VALUES (NEW.leads);
	RETURN NULL;
END;
$$;
CREATE TRIGGER user_trigger AFTER INSERT ON scoring.lead_totals
	FOR EACH ROW EXECUTE FUNCTION public.totals_user_trigger();
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
SELECT i, '2026-03-22 10:00+00', 'B', 5000, 'draft' FROM generate_series(7011, 7012) AS i;
SELECT is((SELECT array_agg(leads) FROM user_trigger_saw), '{2}'::bigint[],
		  'a user''s trigger on lead_totals sees the delta');
DROP TRIGGER user_trigger ON scoring.lead_totals;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7013, '2026-03-22 10:00+00', 'B', 5000, 'draft');
SELECT is((SELECT count(*) FROM user_trigger_saw), 1::bigint,
		  'dropped, it sees nothing more');

-- A check constraint of the user's on lead_totals is checked
ALTER TABLE scoring.lead_totals ADD CONSTRAINT user_check CHECK (leads < 100) NOT VALID;
SELECT throws_ok($$INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
				   SELECT i, '2026-03-23 10:00+00', 'B', 5000, 'draft'
					 FROM generate_series(7101, 7250) AS i$$,
				 '23514', NULL, 'a delta that fails a user''s check constraint fails the insert');
ALTER TABLE scoring.lead_totals DROP CONSTRAINT user_check;
-- A column of the user's with a default gets it (through the INSERT);
-- dropped again, the deltas are stored directly around the dropped column
ALTER TABLE scoring.lead_totals ADD COLUMN user_note text NOT NULL DEFAULT 'from the user';
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7301, '2027-06-30 23:50+00', 'B', 5000, 'draft');
SELECT is((SELECT user_note FROM scoring.lead_totals
			WHERE NOT compacted AND bucket = scoring.total_bucket('2027-06-30 23:50+00')),
		  'from the user', 'a column of the user''s gets its default');
ALTER TABLE scoring.lead_totals DROP COLUMN user_note;
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status)
VALUES (7302, '2027-06-30 23:50+00', 'B', 5000, 'draft');
SELECT is((SELECT count(*) FROM scoring.lead_totals
			WHERE NOT compacted AND bucket = scoring.total_bucket('2027-06-30 23:50+00')),
		  2::bigint, 'after the column is dropped, the next delta is stored too');
SELECT is(pg_temp.disagreements(), 0::bigint, 'after the user''s index, trigger, check and column');

-- TRUNCATE empties the totals too
TRUNCATE scoring.lead CASCADE;
SELECT is((SELECT count(*) FROM scoring.lead_totals), 0::bigint, 'TRUNCATE empties the totals');

SELECT * FROM finish();
ROLLBACK;
