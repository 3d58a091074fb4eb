--
-- test/pgtap/train_order.sql
--	train() gives the same model for the same leads whatever scans of the
--	table ran before it.  Sequential scans of a table larger than a
--	quarter of shared_buffers are synchronized: each starts where another
--	one is, so the leads would come in another order, and the order decides
--	the order of the columns, the sample the ranges of numbers are cut from
--	and how the sums round.  The table is filled past that size; before
--	each of two trainings a cursor reads part of it sequentially, which
--	moves the block the next sequential scan starts from.  Then every
--	other lead is rewritten, so that the same leads are stored, and read,
--	in another order: the ranges, cut from a sample drawn by lead_id, stay
--	the same, and the coefficients change only by rounding.
--
BEGIN;
SELECT plan(6);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Svarog', 0.3);

-- Batches of 5000 closed leads of 2023 until the table is 20 % past the
-- synchronized-scan size.  True logit: -1 + 1.5 for welding + 0.8 for a
-- phone call + a U-shape in the free number "items"; u is a deterministic
-- uniform number per lead.  The constant "pad" makes the rows about 1 kB.
DO $$
DECLARE
	pages_needed bigint := (SELECT setting::bigint FROM pg_settings
							 WHERE name = 'shared_buffers') / 4 * 6 / 5;
	batch int := 0;
BEGIN
	WHILE pg_relation_size('scoring.lead') / current_setting('block_size')::int
		  <= pages_needed LOOP
		INSERT INTO scoring.lead (created_at, shop, channel, category, brand, budget,
								  features, status, closed_at)
		SELECT '2023-01-01'::timestamptz + (i % 360) * interval '1 day',
			   'web' || (i % 5), CASE WHEN i % 3 = 0 THEN 'phone' ELSE 'email' END,
			   CASE WHEN i % 4 = 0 THEN 'welding' ELSE 'compressors' END,
			   CASE WHEN i % 2 = 0 THEN 'Fubag' ELSE 'Svarog' END,
			   1000 + (i * 7919) % 100000,
			   jsonb_build_object('items', (i * 31) % 97 + 0.5, 'pad', repeat('x', 1000)),
			   CASE WHEN ((i * 2654435761) % 1000) / 1000.0 <
						 1 / (1 + exp(-(-1 + CASE WHEN i % 4 = 0 THEN 1.5 ELSE 0 END
										   + CASE WHEN i % 3 = 0 THEN 0.8 ELSE 0 END
										   + ((((i * 31) % 97) - 48) / 48.0) ^ 2)))
					THEN 'won' ELSE 'lost' END,
			   '2023-01-01'::timestamptz + (i % 360) * interval '1 day' + interval '5 days'
		  FROM generate_series(batch * 5000 + 1, batch * 5000 + 5000) AS i;
		batch := batch + 1;
	END LOOP;
END
$$;

SELECT ok(pg_relation_size('scoring.lead') / current_setting('block_size')::int >
		  (SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers') / 4,
		  'the lead table is past the size where sequential scans are synchronized');

CREATE TEMP TABLE m (name text, id int);

-- sequential scans only, for the cursors
SET LOCAL enable_indexscan = off;
SET LOCAL enable_indexonlyscan = off;
SET LOCAL enable_bitmapscan = off;

DECLARE part1 CURSOR FOR SELECT lead_id FROM scoring.lead;
MOVE 7000 IN part1;
CLOSE part1;
INSERT INTO m SELECT 'first', scoring.train('2023-01-01', '2024-01-01',
											'{"holdout": 0, "activate": false}');

DECLARE part2 CURSOR FOR SELECT lead_id FROM scoring.lead;
MOVE 19000 IN part2;
CLOSE part2;
INSERT INTO m SELECT 'second', scoring.train('2023-01-01', '2024-01-01',
											 '{"holdout": 0, "activate": false}');

SELECT ok((SELECT jsonb_array_length(numeric_features->'features.items'->'cuts') > 2
			 FROM scoring.model WHERE model_id = (SELECT id FROM m WHERE name = 'first')),
		  'the free number has its ranges (cut from a sample of the leads)');
SELECT is((SELECT (intercept, weights, numeric_features)::text FROM scoring.model
			WHERE model_id = (SELECT id FROM m WHERE name = 'second')),
		  (SELECT (intercept, weights, numeric_features)::text FROM scoring.model
			WHERE model_id = (SELECT id FROM m WHERE name = 'first')),
		  'the same leads give the same model to the last digit, whatever scan ran before');

-- the same leads in another order: every other one rewritten, its new
-- version behind all the others
UPDATE scoring.lead SET features = features || '{}' WHERE lead_id % 2 = 0;
SELECT ok((SELECT min(ctid) FROM scoring.lead WHERE lead_id % 2 = 0) >
		  (SELECT max(ctid) FROM scoring.lead WHERE lead_id % 2 = 1),
		  'rewritten, the even leads are stored behind the odd ones');
INSERT INTO m SELECT 'reordered', scoring.train('2023-01-01', '2024-01-01',
												'{"holdout": 0, "activate": false}');
SELECT is((SELECT jsonb_object_agg(key, value->'cuts') FROM scoring.model, jsonb_each(numeric_features)
			WHERE model_id = (SELECT id FROM m WHERE name = 'reordered')),
		  (SELECT jsonb_object_agg(key, value->'cuts') FROM scoring.model, jsonb_each(numeric_features)
			WHERE model_id = (SELECT id FROM m WHERE name = 'first')),
		  'read in another order, the same leads give the same ranges of every number');
SELECT cmp_ok((SELECT max(abs(a.value::text::float8 - b.value::text::float8))
				 FROM scoring.model ma, jsonb_each(ma.weights) AS a,
					  scoring.model mb, jsonb_each(mb.weights) AS b
				WHERE ma.model_id = (SELECT id FROM m WHERE name = 'reordered')
				  AND mb.model_id = (SELECT id FROM m WHERE name = 'first')
				  AND a.key = b.key AND jsonb_typeof(a.value) = 'number'),
			  '<', 1e-9::float8,
			  'and the same coefficients but for rounding');

SELECT * FROM finish();
ROLLBACK;
