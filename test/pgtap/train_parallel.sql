--
-- test/pgtap/train_parallel.sql
--	train() reads the second half of the table's blocks in a parallel
--	worker when it can (src/train_parallel.c), and reads it itself, apart,
--	when it cannot.  The model must not tell the two apart: trained with
--	the worker forced on (min_parallel_table_scan_size 0) and with none
--	allowed (max_parallel_maintenance_workers 0), the same leads give the
--	same coefficients, ranges, metrics and counts, every lead is read once
--	whichever half it is stored in, and the worker, which runs in this
--	transaction, sees the leads this transaction inserted and has not
--	committed.  The same with a warm start on a sample of the patterns,
--	and the bands set from every lead's expected profit.  A training
--	cancelled midway leaves nothing behind that stops the next one from
--	starting a worker.  Then the same on a table of one block, whose first
--	half is empty, and on one whose second half has no closed lead.
--
BEGIN;
SELECT plan(22);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Svarog', 0.3);
INSERT INTO scoring.client (client_id, kind, industry, core_industry, annual_turnover)
SELECT c, CASE WHEN c % 4 = 0 THEN 'person' ELSE 'company' END,
	   (ARRAY['production', 'services', 'trade'])[c % 3 + 1], c % 2 = 0,
	   CASE WHEN c % 4 <> 0 THEN 1e6 * (1 + c % 17) END
  FROM generate_series(1, 80) AS c;

-- u(i, k): deterministic uniform numbers in [0, 1), independent across k
CREATE FUNCTION pg_temp.u(i int, k int) RETURNS float8
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT ('x' || substr(md5(i || ':' || k), 1, 8))::bit(32)::bigint / 4294967296.0 $$;

-- 6000 closed leads of 2023 from 80 clients (and some from none), with
-- strings (one of 1500 levels: the worker sends its tokens in several
-- pieces), a number and a flag among their features; open leads and
-- leads outside the window, which are not read
CREATE FUNCTION pg_temp.fill(n int) RETURNS void
	LANGUAGE sql
	AS $$
INSERT INTO scoring.lead (created_at, client_id, shop, channel, category, brand,
						  budget, features, status, closed_at)
SELECT t, CASE WHEN i % 9 <> 0 THEN 1 + (i * 31) % 80 END,
	   'web' || (i % 4), CASE WHEN i % 3 = 0 THEN 'phone' ELSE 'email' END,
	   CASE WHEN i % 5 = 0 THEN 'welding' ELSE 'compressors' END,
	   CASE WHEN i % 2 = 0 THEN 'Fubag' ELSE 'Svarog' END,
	   1000 + (i * 7919) % 90000,
	   jsonb_build_object('utm', (ARRAY['yandex', 'google', 'direct'])[i % 3 + 1],
						  'items', (i * 37) % 41, 'urgent', i % 7 = 0,
						  'ref', 'r' || (i * 13) % 1500),
	   CASE WHEN i % 97 = 0 THEN 'new'
			WHEN pg_temp.u(i, 0) < 1 / (1 + exp(1 - CASE WHEN i % 5 = 0 THEN 1.2 ELSE 0 END
												 - CASE WHEN i % 3 = 0 THEN 0.8 ELSE 0 END))
			THEN 'won' ELSE 'lost' END,
	   CASE WHEN i % 97 <> 0 THEN t + interval '5 days' END
  FROM generate_series(1, n) AS i,
	   LATERAL (SELECT CASE WHEN i % 50 = 0 THEN '2022-06-01'::timestamptz
							ELSE '2023-01-01'::timestamptz + (i % 360) * interval '1 day'
								 + (i % 24) * interval '1 hour' END AS t) AS moment
$$;

-- a table of these leads alone: rolled-back rows of other tests would
-- leave blocks without a live lead where the halves are cut
TRUNCATE scoring.lead CASCADE;
SELECT pg_temp.fill(6000);

SELECT ok(pg_relation_size('scoring.lead') / current_setting('block_size')::int >= 40,
		  'the leads fill dozens of blocks');
SELECT is((SELECT array_agg(DISTINCT (ctid::text::point)[0] >=
									 pg_relation_size('scoring.lead') / current_setting('block_size')::int / 2)
			 FROM scoring.lead WHERE status IN ('won', 'lost')),
		  '{f,t}', 'both halves of the table hold closed leads');

CREATE TEMP TABLE m (run text PRIMARY KEY, id int);
SET LOCAL max_parallel_maintenance_workers = 0;
INSERT INTO m SELECT 'alone', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 3}');
SET LOCAL max_parallel_maintenance_workers = 2;
SET LOCAL min_parallel_table_scan_size = 0;
INSERT INTO m SELECT 'worker', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 3}');
-- fewer columns: Newton's method, whose Hessians the worker sums too
SET LOCAL max_parallel_maintenance_workers = 0;
INSERT INTO m SELECT 'newton alone', scoring.train('2023-01-01', '2024-01-01', '{"holdout": 0}');
SET LOCAL max_parallel_maintenance_workers = 2;
INSERT INTO m SELECT 'newton worker', scoring.train('2023-01-01', '2024-01-01', '{"holdout": 0}');
-- a warm start on every 12th pattern, whose sums the worker shares too,
-- and the bands set from the expected profit of every lead
SET LOCAL max_parallel_maintenance_workers = 0;
INSERT INTO m SELECT 'warm alone',
	   scoring.train('2023-01-01', '2024-01-01', '{"warm_sample": 500, "set_bands": true}');
CREATE TEMP TABLE bands_alone AS SELECT * FROM scoring.priority_band;
SET LOCAL max_parallel_maintenance_workers = 2;
INSERT INTO m SELECT 'warm worker',
	   scoring.train('2023-01-01', '2024-01-01', '{"warm_sample": 500, "set_bands": true}');
-- allowed one, but no worker slot to be had: read here, apart
SET LOCAL max_parallel_workers = 0;
INSERT INTO m SELECT 'no slot', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 3}');
RESET max_parallel_workers;

CREATE TEMP VIEW runs AS
SELECT run, n_rows, n_won, n_patterns, intercept, weights, numeric_features, ltv,
	   metrics #- '{fit,seconds}' #- '{fit,workers}' #- '{bands_set}' AS metrics,
	   (metrics->'fit'->>'workers')::int AS workers
  FROM scoring.model JOIN m ON model_id = id;

SELECT is((SELECT array_agg(workers ORDER BY run) FROM runs), '{0,0,1,0,0,1,1}',
		  'a worker read half of the leads when one was allowed and could be had');
SELECT is((SELECT n_rows FROM runs WHERE run = 'worker'),
		  (SELECT count(*) FROM scoring.lead
			WHERE status IN ('won', 'lost')
			  AND created_at >= '2023-01-01' AND created_at < '2024-01-01'),
		  'every closed lead of the window is read once, whichever half it is in');
SELECT is((SELECT count(DISTINCT (n_rows, n_won, n_patterns, intercept)) FROM runs
			WHERE run NOT LIKE 'newton%' AND run NOT LIKE 'warm%'), 1::bigint,
		  'same counts, patterns and intercept with and without the worker');
SELECT is((SELECT weights FROM runs WHERE run = 'worker'),
		  (SELECT weights FROM runs WHERE run = 'alone'),
		  'same coefficients with and without the worker');
SELECT ok((SELECT (metrics->'fit'->>'hessians')::int >= 1 AND jsonb_typeof(weights) = 'object'
			  FROM scoring.model JOIN m ON model_id = id WHERE run = 'newton worker'),
		  'the smaller model was fitted by Newton''s method, with Hessians');
SELECT is((SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'newton worker'),
		  (SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'newton alone'),
		  'Newton: the same model whether the worker summed half of the patterns or not');
SELECT ok((SELECT bool_and((metrics->'fit'->>'warm')::int BETWEEN 400 AND 600
					   AND (metrics->>'bands_set')::bool)
			  FROM scoring.model JOIN m ON model_id = id WHERE run LIKE 'warm%'),
		  'the warm start fitted a sample of about 500 patterns, and the bands were set');
SELECT is((SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'warm worker'),
		  (SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'warm alone'),
		  'warm start: the same model whether the worker summed its part of the sample or not');
SELECT is((SELECT array_agg((priority, min_expected_profit) ORDER BY priority)::text
			 FROM scoring.priority_band),
		  (SELECT array_agg((priority, min_expected_profit) ORDER BY priority)::text
			 FROM bands_alone),
		  'the same bands whether the worker computed the logits of its leads or not');
SELECT is((SELECT (n_rows, weights, numeric_features, ltv, metrics)::text FROM runs WHERE run = 'no slot'),
		  (SELECT (n_rows, weights, numeric_features, ltv, metrics)::text FROM runs WHERE run = 'alone'),
		  'no worker slot: the same model, read here');
SELECT is((SELECT (numeric_features, ltv, metrics)::text FROM runs WHERE run = 'worker'),
		  (SELECT (numeric_features, ltv, metrics)::text FROM runs WHERE run = 'alone'),
		  'same numbers, ranges, lifetime uplift and metrics with and without the worker');
SELECT ok((SELECT count(*) > 1500 FROM runs, jsonb_object_keys(weights) WHERE run = 'worker')
		  AND (SELECT weights ? 'features.utm=yandex' AND weights ? 'category=welding'
					  AND numeric_features ? 'features.items'
				 FROM runs WHERE run = 'worker'),
		  'the model has the fixed and free features of both halves');

-- cancelled while it runs (most likely in the read, worker and all),
-- inside a subtransaction: the next training starts a worker again
CREATE FUNCTION pg_temp.cancelled_train() RETURNS text
	LANGUAGE plpgsql
	AS $$
BEGIN
	PERFORM scoring.train('2023-01-01', '2024-01-01', '{"min_count": 3}');
	RETURN 'finished';
EXCEPTION WHEN query_canceled THEN
	RETURN 'cancelled';
END $$;
SET LOCAL statement_timeout = '10ms';
SELECT is(pg_temp.cancelled_train(), 'cancelled',
		  'a training cancelled by statement_timeout stops');
SET LOCAL statement_timeout = 0;
INSERT INTO m SELECT 'after cancel', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 3}');
SELECT is((SELECT (workers, n_rows, weights)::text FROM runs WHERE run = 'after cancel'),
		  (SELECT (workers, n_rows, weights)::text FROM runs WHERE run = 'worker'),
		  'after the cancel, a worker reads again and the model is the same');

-- a table of one block: the first half is empty, the worker reads it all
TRUNCATE m;
TRUNCATE scoring.lead CASCADE;
SELECT pg_temp.fill(25);
SELECT is(pg_relation_size('scoring.lead') / current_setting('block_size')::int, 1::bigint,
		  'the small table has one block');
SET LOCAL max_parallel_maintenance_workers = 0;
INSERT INTO m SELECT 'alone', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 1}');
SET LOCAL max_parallel_maintenance_workers = 2;
INSERT INTO m SELECT 'worker', scoring.train('2023-01-01', '2024-01-01', '{"min_count": 1}');
SELECT is((SELECT array_agg(workers ORDER BY run) FROM runs), '{0,1}',
		  'one block: the worker read all of it');
SELECT is((SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'worker'),
		  (SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'alone'),
		  'one block: the same model with and without the worker');

-- a table whose second half holds no closed lead: the worker has nothing
-- to sample, count, encode or sum, and says so
TRUNCATE m;
TRUNCATE scoring.lead CASCADE;
SELECT pg_temp.fill(3000);
INSERT INTO scoring.lead (created_at, shop, channel, category, brand, budget, status)
SELECT '2023-03-01', 'web1', 'email', 'welding', 'Fubag', 5000, 'draft'
  FROM generate_series(1, 6000);
SELECT is((SELECT count(*) FROM scoring.lead
			WHERE status IN ('won', 'lost')
			  AND (ctid::text::point)[0] >=
				  pg_relation_size('scoring.lead') / current_setting('block_size')::int / 2),
		  0::bigint, 'the second half of the table holds no closed lead');
SET LOCAL max_parallel_maintenance_workers = 0;
INSERT INTO m SELECT 'alone', scoring.train('2023-01-01', '2024-01-01', '{"warm_sample": 100}');
SET LOCAL max_parallel_maintenance_workers = 2;
INSERT INTO m SELECT 'worker', scoring.train('2023-01-01', '2024-01-01', '{"warm_sample": 100}');
SELECT is((SELECT array_agg((workers, (metrics->'fit'->>'warm')::int > 0) ORDER BY run)::text
			 FROM runs), '{"(0,t)","(1,t)"}',
		  'no closed lead in its half: a worker all the same, and a warm start');
SELECT is((SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'worker'),
		  (SELECT (n_rows, weights, numeric_features, metrics)::text FROM runs WHERE run = 'alone'),
		  'no closed lead in its half: the same model with and without the worker');

SELECT * FROM finish();
ROLLBACK;
