--
-- The client history the trigger counts for an import of many leads in
-- one statement, which a memo shortens (src/client.c), must be what it
-- counts lead by lead.  Every batch below goes in twice: as one INSERT ...
-- SELECT for companies 1-20, and one INSERT per lead, in the same order,
-- for their twins 101-120 (lead_id + 100000); with a model that weighs the
-- history heavily, every lead's p_win must equal its twin's.  Batches in
-- created_at order (the memo's case) with same-moment ties, wins closed
-- before, at and long after later leads, wins never closed; in random
-- order; a batch inside an earlier one's span; an ON CONFLICT DO UPDATE
-- that moves a close in the middle of a batch; ON CONFLICT DO NOTHING
-- and another BEFORE trigger dropping leads the memo had been passed.
--
-- Runs in a fresh database with pgtap and scoring; changes nothing (ROLLBACK).
--
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(12);

INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
-- p_win moves with every earlier lead and with every win
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, -1,
		'{"history.leads": 0.3, "history.win_rate": 1.5}',
		'{"history.leads": {"mean": 20, "std": 15, "min": 0, "max": 100000},
		  "history.win_rate": {"mean": 0.4, "std": 0.2, "min": 0, "max": 1}}');
INSERT INTO scoring.client (client_id, kind, name)
SELECT c, 'company', 'Company ' || c
  FROM generate_series(1, 20) AS c UNION ALL
SELECT c, 'company', 'Company ' || c
  FROM generate_series(101, 120) AS c;

-- Imports pg_temp.batch (ordered by ord) both ways; tail ends both INSERTs
CREATE TEMP TABLE batch (lead_id bigint, client_id bigint, created_at timestamptz,
						 status text, closed_at timestamptz, ord float8);
CREATE FUNCTION pg_temp.import(tail text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	EXECUTE 'INSERT INTO scoring.lead (lead_id, client_id, created_at, brand, budget, status,'
			'                          closed_at)'
			' SELECT lead_id, client_id, created_at, ''B'', 10000, status, closed_at'
			'   FROM batch ORDER BY ord ' || tail;
	FOR r IN SELECT * FROM batch ORDER BY ord LOOP
		EXECUTE 'INSERT INTO scoring.lead (lead_id, client_id, created_at, brand, budget,'
				'                          status, closed_at)'
				' VALUES ($1 + 100000, $2 + 100, $3, ''B'', 10000, $4, $5) ' || tail
		USING r.lead_id, r.client_id, r.created_at, r.status, r.closed_at;
	END LOOP;
	TRUNCATE batch;
END;
$$;
-- Leads whose p_win differs from their twin's
CREATE FUNCTION pg_temp.differing() RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM scoring.lead a JOIN scoring.lead b ON b.lead_id = a.lead_id + 100000
	 WHERE a.lead_id < 100000 AND a.p_win IS DISTINCT FROM b.p_win
$$;

SELECT setseed(0.11);
CREATE TEMP TABLE src AS
	SELECT i AS lead_id, 1 + i % 20 AS client_id,
		   timestamptz '2026-01-01 00:00+00' + (i / 40) * interval '1 hour' AS created_at,
		   random() AS r
	  FROM generate_series(1, 3000) AS i;

-- 1. in created_at order: 2 leads per company at each moment
INSERT INTO batch
SELECT lead_id, client_id, created_at,
	   CASE WHEN r < 0.35 THEN 'won' WHEN r < 0.8 THEN 'lost' ELSE 'draft' END,
	   CASE WHEN r < 0.05 THEN NULL
			WHEN r < 0.10 THEN created_at
			WHEN r < 0.80 THEN created_at + (r * 300)::int * interval '1 hour' END,
	   lead_id
  FROM src WHERE lead_id <= 1500;
SELECT pg_temp.import();
SELECT cmp_ok((SELECT count(DISTINCT p_win) FROM scoring.lead), '>', 100::bigint,
			  'the history moves p_win: many distinct values');
SELECT is(pg_temp.differing(), 0::bigint, 'in created_at order: as lead by lead');

-- 2. in random order, before and among the first batch
INSERT INTO batch
SELECT lead_id, client_id, created_at - interval '40 days',
	   CASE WHEN r < 0.4 THEN 'won' ELSE 'lost' END,
	   created_at - interval '40 days' + (r * 500)::int * interval '1 hour', r
  FROM src WHERE lead_id BETWEEN 1501 AND 2000;
SELECT pg_temp.import();
SELECT is(pg_temp.differing(), 0::bigint, 'in random order: as lead by lead');

-- 3. in order again, inside the first batch's span
INSERT INTO batch
SELECT lead_id, client_id, created_at - interval '20 hours', 'won',
	   created_at - interval '19 hours', lead_id
  FROM src WHERE lead_id BETWEEN 2001 AND 2300;
SELECT pg_temp.import();
SELECT is(pg_temp.differing(), 0::bigint, 'inside an earlier batch''s span: as lead by lead');

-- 4. an upsert that moves a win's close in the middle of a batch: the
--    leads of that company after it count it from its new moment
SELECT is((SELECT status || ' ' || (closed_at < '2026-02-15 00:00+00')
			 FROM scoring.lead WHERE lead_id = 2001), 'won true',
		  'lead 2001 is won, closed before the upsert''s leads');
CREATE FUNCTION pg_temp.upsert_rows(offs int)
RETURNS TABLE (lead_id bigint, client_id bigint, created_at timestamptz)
LANGUAGE sql AS $$
	SELECT lead_id + offs, client_id + offs / 1000, created_at
	  FROM (SELECT lead_id, client_id, created_at + interval '30 days' AS created_at
			  FROM src WHERE lead_id BETWEEN 2301 AND 2400 AND client_id = 2
			UNION ALL
			SELECT 2001, 2, timestamptz '2026-02-15 00:00+00'
			UNION ALL
			SELECT lead_id, client_id, created_at + interval '60 days'
			  FROM src WHERE lead_id BETWEEN 2401 AND 2500 AND client_id IN (2, 3)) s
$$;
SELECT is((SELECT client_id FROM scoring.lead WHERE lead_id = 2001), 2::bigint,
		  'lead 2001 is company 2''s');
INSERT INTO scoring.lead AS t (lead_id, client_id, created_at, brand, budget, status)
SELECT lead_id, client_id, created_at, 'B', 10000, 'lost'
  FROM pg_temp.upsert_rows(0) ORDER BY created_at, lead_id
ON CONFLICT (lead_id) DO UPDATE SET closed_at = '2026-03-20 00:00+00';
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM pg_temp.upsert_rows(100000) ORDER BY created_at, lead_id LOOP
		INSERT INTO scoring.lead AS t (lead_id, client_id, created_at, brand, budget, status)
		VALUES (r.lead_id, r.client_id, r.created_at, 'B', 10000, 'lost')
		ON CONFLICT (lead_id) DO UPDATE SET closed_at = '2026-03-20 00:00+00';
	END LOOP;
END;
$$;
SELECT is((SELECT count(*) FROM scoring.lead
			WHERE lead_id IN (2001, 102001) AND closed_at = '2026-03-20 00:00+00'),
		  2::bigint, 'the upserts moved lead 2001''s close and its twin''s');
SELECT is(pg_temp.differing(), 0::bigint, 'an upsert of a close in the middle: as lead by lead');

-- 5. ON CONFLICT DO NOTHING skipping leads in the middle of a batch: the
--    memo must not count the leads its trigger passed on but that were
--    never stored (every 7th comes with the id of a lead of batch 1)
INSERT INTO batch
SELECT CASE WHEN lead_id % 7 = 0 THEN lead_id - 2500 ELSE lead_id END,
	   client_id, created_at + interval '90 days',
	   CASE WHEN r < 0.5 THEN 'won' ELSE 'lost' END,
	   created_at + interval '90 days' + interval '1 hour', lead_id
  FROM src WHERE lead_id BETWEEN 2501 AND 2800;
SELECT pg_temp.import('ON CONFLICT (lead_id) DO NOTHING');
SELECT is((SELECT count(*) FROM scoring.lead WHERE lead_id BETWEEN 2501 AND 2800),
		  257::bigint, 'the batch''s 43 conflicting leads were skipped');
SELECT is(pg_temp.differing(), 0::bigint, 'leads skipped by ON CONFLICT DO NOTHING: as lead by lead');

-- 6. a BEFORE INSERT trigger after the scoring one that drops every fifth
--    lead of a batch and moves others by a day
CREATE FUNCTION pg_temp.drop_some() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.lead_id % 100000 % 5 = 0 THEN
		RETURN NULL;
	END IF;
	IF NEW.lead_id % 100000 % 5 = 1 THEN
		NEW.created_at := NEW.created_at - interval '1 day';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER zz_drop_some BEFORE INSERT ON scoring.lead
	FOR EACH ROW EXECUTE FUNCTION pg_temp.drop_some();
INSERT INTO batch
SELECT lead_id, client_id, created_at + interval '120 days',
	   CASE WHEN r < 0.5 THEN 'won' ELSE 'lost' END,
	   created_at + interval '120 days' + interval '1 hour', lead_id
  FROM src WHERE lead_id BETWEEN 2801 AND 3000;
SELECT pg_temp.import();
DROP TRIGGER zz_drop_some ON scoring.lead;
SELECT is((SELECT count(*) FROM scoring.lead WHERE lead_id BETWEEN 2801 AND 3000),
		  160::bigint, 'the other trigger dropped a fifth of the batch');
SELECT is(pg_temp.differing(), 0::bigint, 'leads dropped by a later trigger: as lead by lead');

SELECT * FROM finish();
ROLLBACK;
