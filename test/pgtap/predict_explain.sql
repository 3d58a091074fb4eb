--
-- test/pgtap/predict_explain.sql
--	scoring.predict() and scoring.explain() (SPEC §6): what a would-be
--	lead would score, and the terms of a stored lead's score.
--
--	Model 1 is written by hand so that every number can be computed here:
--	a category is its level's coefficient (else the field's "(other)", for
--	a value that is present), a number x is transformed to
--	sign(x) ln(1 + |x|), clamped to [min, max], standardised and weighted.
--
BEGIN;
SELECT plan(50);

SET LOCAL timezone = 'UTC';

CREATE FUNCTION pg_temp.sig(x float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS
	$$ SELECT 1 / (1 + exp(-x)) $$;
-- the contribution of a number with mean m, std s, range [lo, hi], weight w
CREATE FUNCTION pg_temp.num(x float8, m float8, s float8, lo float8, hi float8, w float8)
RETURNS float8 LANGUAGE sql IMMUTABLE AS
	$$ SELECT w * (least(hi, greatest(lo, sign(x) * ln(1 + abs(x)))) - m) / s $$;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);
INSERT INTO scoring.client (client_id, kind) VALUES (1, 'company'), (2, 'person'), (3, 'company');
-- client 3 has two earlier leads (one won) when the leads below arrive
INSERT INTO scoring.lead (lead_id, created_at, client_id, status, closed_at)
VALUES (1, '2024-01-01', 3, 'won', '2024-01-05'), (2, '2024-02-01', 3, 'lost', '2024-02-05');

--
-- Without any model
--
SELECT throws_ok($$SELECT scoring.predict('{"category": "welding"}')$$, 'SC002', 'no model to score with',
				 'predict without an active model: SC002');
INSERT INTO scoring.lead (lead_id, category, brand, budget, status) VALUES (10, 'welding', 'Fubag', 1000, 'draft');
SELECT throws_ok('SELECT * FROM scoring.explain(10)', 'SC002', 'no model to score with',
				 'explain of a lead scored without a model: SC002');

INSERT INTO scoring.model (model_id, active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features, ltv)
VALUES (1, true, '2024-01-01', '2025-01-01', 0, 0, -0.5,
		'{"category=welding": 1.2, "shop=s1": 0.4, "shop=(other)": -0.3,
		  "channel=(missing)": -0.2, "features.colour=red": 0.7,
		  "features.size": 0.5, "features.size=(present)": 0.1,
		  "features.urgent=true": 0.35, "budget": 0.3, "client.kind=company": 0.6,
		  "history.leads": 0.25, "history.win_rate": 0.8}',
		'{"budget": {"mean": 10, "std": 2, "min": 5, "max": 15},
		  "features.size": {"mean": 1, "std": 0.5, "min": 0, "max": 3},
		  "history.leads": {"mean": 0.5, "std": 1, "min": 0, "max": 3},
		  "history.win_rate": {"mean": 0.4, "std": 0.2, "min": 0, "max": 1}}',
		'{}'),
	   (2, false, '2024-01-01', '2025-01-01', 0, 0, 1, '{}', '{}', '{}');

-- the base of a lead without a client: intercept, channel (missing), and
-- history.leads = 0
CREATE TEMP TABLE base AS SELECT -0.5 - 0.2 + pg_temp.num(0, 0.5, 1, 0, 3, 0.25) AS b;

--
-- predict()
--
SELECT is(round(scoring.predict('{}')::numeric, 12), round(pg_temp.sig(b)::numeric, 12),
		  'an empty lead: intercept, channel (missing) and no history') FROM base;
SELECT is(round(scoring.predict('{"category": "welding", "shop": "s1", "channel": "phone"}')::numeric, 12),
		  round(pg_temp.sig(b + 0.2 + 1.2 + 0.4)::numeric, 12), 'category and shop levels') FROM base;
SELECT is(round(scoring.predict('{"shop": "unheard-of", "channel": "phone"}')::numeric, 12),
		  round(pg_temp.sig(b + 0.2 - 0.3)::numeric, 12), 'an unseen shop takes shop=(other)') FROM base;
SELECT is(round(scoring.predict('{"shop": 42, "channel": "phone"}')::numeric, 12),
		  round(pg_temp.sig(b + 0.2 - 0.3)::numeric, 12), 'a number as shop is a level like any other') FROM base;
SELECT is(round(scoring.predict('{"category": "pumps"}')::numeric, 12),
		  round(pg_temp.sig(b)::numeric, 12), 'a level without coefficient and no (other): nothing') FROM base;
SELECT is(round(scoring.predict('{"colour": "red"}')::numeric, 12),
		  round(pg_temp.sig(b + 0.7)::numeric, 12), 'free features at the top level') FROM base;
SELECT is(round(scoring.predict('{"features": {"colour": "red"}}')::numeric, 12),
		  round(pg_temp.sig(b + 0.7)::numeric, 12), 'free features in a "features" object') FROM base;
SELECT is(round(scoring.predict('{"colour": "red", "features": {"colour": "blue"}}')::numeric, 12),
		  round(pg_temp.sig(b)::numeric, 12), 'a "features" object wins over the top level') FROM base;
SELECT is(round(scoring.predict('{"colour": "red", "features": ["colour", "blue"]}')::numeric, 12),
		  round(pg_temp.sig(b + 0.7)::numeric, 12), 'a "features" that is not an object is ignored') FROM base;
SELECT is(round(scoring.predict('{"colour": ["red"], "urgent": true}')::numeric, 12),
		  round(pg_temp.sig(b + 0.35)::numeric, 12), 'an array carries nothing, a boolean is a flag') FROM base;
SELECT is(round(scoring.predict('{"urgent": "true"}')::numeric, 12),
		  round(pg_temp.sig(b + 0.35)::numeric, 12), 'the string "true" is the same level as true') FROM base;
SELECT is(round(scoring.predict('{"size": 2}')::numeric, 12),
		  round(pg_temp.sig(b + pg_temp.num(2, 1, 0.5, 0, 3, 0.5) + 0.1)::numeric, 12),
		  'a free number: its standardised log and the (present) indicator') FROM base;
SELECT is(round(scoring.predict('{"size": 1e6}')::numeric, 12),
		  round(pg_temp.sig(b + 0.5 * (3 - 1) / 0.5 + 0.1)::numeric, 12),
		  'a free number above the training range is clamped to its max') FROM base;
SELECT is(round(scoring.predict('{"size": -5}')::numeric, 12),
		  round(pg_temp.sig(b + 0.5 * (0 - 1) / 0.5 + 0.1)::numeric, 12),
		  'a negative free number is clamped to its min') FROM base;
SELECT is(round(scoring.predict('{"size": "2"}')::numeric, 12), round(pg_temp.sig(b)::numeric, 12),
		  'a number given as a string is a level, not a number') FROM base;
SELECT is(round(scoring.predict('{"budget": 1000000}')::numeric, 12),
		  round(pg_temp.sig(b + pg_temp.num(1e6, 10, 2, 5, 15, 0.3))::numeric, 12), 'budget') FROM base;
SELECT is(round(scoring.predict('{"budget": 1e300}')::numeric, 12),
		  round(pg_temp.sig(b + 0.3 * (15 - 10) / 2)::numeric, 12), 'a huge budget is clamped') FROM base;
SELECT is(round(scoring.predict('{"budget": "1000000"}')::numeric, 12),
		  round(pg_temp.sig(b)::numeric, 12), 'a budget given as a string is ignored') FROM base;
-- the client: kind and history before now
SELECT is(round(scoring.predict('{}', 1)::numeric, 12), round(pg_temp.sig(b + 0.6)::numeric, 12),
		  'a company client') FROM base;
SELECT is(round(scoring.predict('{}', 2)::numeric, 12), round(pg_temp.sig(b)::numeric, 12),
		  'a person client') FROM base;
SELECT is(round(scoring.predict('{}', 999)::numeric, 12), round(pg_temp.sig(b)::numeric, 12),
		  'a client that does not exist is no client') FROM base;
SELECT is(round(scoring.predict('{}', 3)::numeric, 12),
		  round(pg_temp.sig(-0.5 - 0.2 + 0.6 + pg_temp.num(2, 0.5, 1, 0, 3, 0.25)
							+ pg_temp.num((1 + 1) / (2 + 2.0), 0.4, 0.2, 0, 1, 0.8))::numeric, 12),
		  'a client with history: two earlier leads, one won, smoothed win rate 2/4');
-- the model asked for
SELECT is(scoring.predict('{"category": "welding"}', NULL, 2), pg_temp.sig(1),
		  'an inactive model by id');
SELECT is(scoring.predict('{"category": "welding"}', NULL, NULL), scoring.predict('{"category": "welding"}'),
		  'model_id NULL: the active model');
SELECT throws_ok($$SELECT scoring.predict('{}', NULL, 999)$$, 'SC002', 'no model to score with',
				 'an unknown model id: SC002');
-- not an object
SELECT throws_ok($$SELECT scoring.predict('[]')$$, '22023', 'features must be a JSON object', 'an array: 22023');
SELECT throws_ok($$SELECT scoring.predict('"welding"')$$, '22023', 'features must be a JSON object', 'a string: 22023');
SELECT throws_ok($$SELECT scoring.predict('1')$$, '22023', 'features must be a JSON object', 'a number: 22023');
SELECT throws_ok($$SELECT scoring.predict('null')$$, '22023', 'features must be a JSON object', 'JSON null: 22023');
SELECT is(scoring.predict(NULL), NULL::float8, 'SQL NULL in, NULL out');

-- predict() is what the trigger stores
INSERT INTO scoring.lead (lead_id, shop, channel, category, brand, budget, features, status)
VALUES (20, 's1', NULL, 'welding', 'Fubag', 1000000, '{"colour": "red", "size": 2}', 'draft');
SELECT is(scoring.predict('{"shop": "s1", "category": "welding", "brand": "Fubag", "budget": 1000000, "features": {"colour": "red", "size": 2}}'),
		  (SELECT p_win FROM scoring.lead WHERE lead_id = 20), 'predict() = the p_win the trigger stored');
WITH l AS (INSERT INTO scoring.lead (lead_id, client_id, category, budget, status)
		   VALUES (21, 3, 'welding', 5000, 'draft') RETURNING p_win)
SELECT is(p_win, scoring.predict('{"category": "welding", "budget": 5000}', 3),
		  'with a client, in the statement that inserts the lead: the same p_win')
  FROM l;

--
-- explain()
--
SELECT results_eq(
	$$SELECT feature, value, round(contribution::numeric, 6) FROM scoring.explain(20)$$,
	$$VALUES ('category', 'welding', 1.2::numeric),
			 ('features.colour', 'red', 0.7),
			 ('budget', '1000000', round(pg_temp.num(1e6, 10, 2, 5, 15, 0.3)::numeric, 6)),
			 ('(intercept)', NULL, -0.5),
			 ('shop', 's1', 0.4),
			 ('channel', '(missing)', -0.2),
			 ('history.leads', '0', -0.125),
			 ('features.size', '(present)', 0.1),
			 ('features.size', '2', round(pg_temp.num(2, 1, 0.5, 0, 3, 0.5)::numeric, 6))$$,
	'explain: every term with its value, largest first, the intercept with no value');
SELECT ok(abs(ln(p_win / (1 - p_win)) - (SELECT sum(contribution) FROM scoring.explain(20))) < 1e-9,
		  'explain: the terms add up to logit(p_win)')
  FROM scoring.lead WHERE lead_id = 20;
SELECT ok(abs(ln(p_win / (1 - p_win)) - (SELECT sum(contribution) FROM scoring.explain(21))) < 1e-9,
		  'explain of a lead with a client and history: the terms add up to logit(p_win)')
  FROM scoring.lead WHERE lead_id = 21;
SELECT is((SELECT count(*) FROM scoring.explain(21) WHERE feature IN ('client.kind', 'history.leads', 'history.win_rate')),
		  3::bigint, 'explain shows the client and its history');
SELECT is((SELECT count(*) FROM scoring.explain(NULL)), 0::bigint, 'explain(NULL): no rows');
SELECT throws_ok('SELECT * FROM scoring.explain(123456)', 'P0002', 'lead 123456 does not exist',
				 'explain of an unknown lead: P0002');

-- many leads of every shape: the terms always add up
INSERT INTO scoring.lead (lead_id, client_id, shop, channel, category, brand, budget, features, status)
SELECT 1000 + i,
	   (ARRAY[NULL, 1, 2, 3])[1 + i % 4]::bigint,
	   (ARRAY['s1', 's2', NULL])[1 + i % 3],
	   (ARRAY['email', NULL])[1 + i % 2],
	   (ARRAY['welding', 'pumps', NULL, 'compressors', 'welding'])[1 + i % 5],
	   'Fubag',
	   (ARRAY[NULL, 0, 500, 1e6, 1e12, -5, 'NaN'])[1 + i % 7]::numeric,
	   (ARRAY['{}', '{"colour": "red"}', '{"size": 0.5}', '{"size": 1e9, "urgent": true}',
			  '[1]', '{"colour": ["red"], "size": "3"}'])[1 + i % 6]::jsonb,
	   'draft'
  FROM generate_series(1, 210) AS i;
SELECT is((SELECT count(*) FROM scoring.lead l
			WHERE l.lead_id > 1000
			  AND abs(ln(l.p_win / (1 - l.p_win)) - (SELECT sum(contribution) FROM scoring.explain(l.lead_id))) < 1e-9),
		  210::bigint, '210 leads of every shape: the terms add up to logit(p_win)');
SELECT is((SELECT count(*) FROM scoring.lead l
			WHERE l.lead_id > 1000
			  AND (SELECT array_agg(abs(contribution) ORDER BY ord)
					 FROM scoring.explain(l.lead_id) WITH ORDINALITY AS e(f, v, contribution, ord))
				  = (SELECT array_agg(abs(contribution) ORDER BY abs(contribution) DESC)
					   FROM scoring.explain(l.lead_id))),
		  210::bigint, 'always ordered by size of contribution');
SELECT is((SELECT count(*) FROM scoring.lead l
			WHERE l.lead_id > 1000
			  AND (SELECT count(*) FROM scoring.explain(l.lead_id) WHERE feature = '(intercept)') = 1),
		  210::bigint, 'always exactly one intercept');
SELECT is((SELECT count(*) FILTER (WHERE abs(scoring.predict(
					jsonb_build_object('shop', shop, 'channel', channel, 'category', category,
									   'budget', budget, 'features', features)) - p_win) < 1e-12)
			 FROM scoring.lead WHERE lead_id > 1000 AND client_id IS NULL),
		  52::bigint, 'predict() agrees with the stored p_win of the 52 leads without a client');

-- explain uses the model that scored the lead, not the active one
UPDATE scoring.model SET active = false WHERE model_id = 1;
UPDATE scoring.model SET active = true WHERE model_id = 2;
INSERT INTO scoring.lead (lead_id, category, status) VALUES (30, 'welding', 'draft');
SELECT ok(abs(ln(p_win / (1 - p_win)) - (SELECT sum(contribution) FROM scoring.explain(20))) < 1e-9,
		  'another model is active: lead 20 is still explained by model 1')
  FROM scoring.lead WHERE lead_id = 20;
SELECT results_eq($$SELECT feature, contribution FROM scoring.explain(30)$$,
				  $$VALUES ('(intercept)', 1::float8)$$, 'lead 30 is explained by model 2');
DELETE FROM scoring.model WHERE model_id = 1;
SELECT throws_ok('SELECT * FROM scoring.explain(20)', 'SC002', 'no model to score with',
				 'the model of the lead was deleted: SC002');

-- predict() in a query that runs in parallel mode (a parallel scan of the
-- leads beside it), just after the configuration changed: it reloads the
-- configuration there, with read-only queries, which parallel mode allows
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS SETOF text LANGUAGE plpgsql AS
	$$ BEGIN RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q; END $$;
SELECT ok((SELECT count(*) > 0 FROM pg_temp.plan_of(
			'SELECT scoring.predict(''{"category": "welding"}''),'
			' (SELECT count(*) FROM scoring.lead WHERE lead_id > 0)') AS l
		   WHERE l LIKE '%Gather%'),
		  'the query below runs a parallel scan');
UPDATE scoring.model SET intercept = 0.5 WHERE model_id = 2;
SELECT lives_ok($$CREATE TEMP TABLE in_parallel AS
				  SELECT scoring.predict('{"category": "welding"}') AS p,
						 (SELECT count(*) FROM scoring.lead WHERE lead_id > 0) AS n$$,
				'predict() reloads the changed configuration inside a parallel query');
SELECT is((SELECT p FROM in_parallel), 1 / (1 + exp(-0.5::float8)),
		  'with the intercept just set');

SELECT * FROM finish();
ROLLBACK;
