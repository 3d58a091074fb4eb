--
-- Bad input and failure (SPEC §7): a lead is never lost, odd data is
-- stored and flagged, wrong calls fail with a specific SQLSTATE and change
-- nothing, and nothing crashes the server.
--
-- Errors are shown tersely, each followed by its SQLSTATE.
--
SET timezone = 'UTC';
\set VERBOSITY terse
SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.20);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 10000), (2, 5000), (3, 1000), (4, 100);

--
-- No model yet: leads are stored, flagged, and go to a person
--
INSERT INTO scoring.lead (category, brand, budget, status)
VALUES ('pumps', 'Fubag', 10000, 'draft'),		-- 1
	   ('pumps', 'Fubag', 'NaN', 'draft'),		-- 2
	   ('pumps', 'Nope', NULL, 'draft');		-- 3
SELECT lead_id, budget, p_win, potential_profit, expected_profit, model_id,
	   priority, score_flags
  FROM scoring.lead ORDER BY lead_id;
-- explain() of a lead scored without a model, and of no lead at all
SELECT * FROM scoring.explain(1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM scoring.explain(123456789);
\echo :LAST_ERROR_SQLSTATE
-- predict() without an active model
SELECT scoring.predict('{"category": "pumps"}');
\echo :LAST_ERROR_SQLSTATE

--
-- A model written by hand, so that every p_win below can be checked on
-- paper: logit = 1 for welding + 2 for colour "red" + 0.5 when the key
-- k5000 holds a number + 0.5 x the standardised budget, where budget is
-- taken as ln(1 + budget), clipped to [0, 20], minus 10, over 2.
--
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features, ltv)
VALUES (true, '2024-01-01 00:00+00', '2025-01-01 00:00+00', 0, 0, 0,
		'{"category=welding": 1, "features.colour=red": 2,
		  "features.k5000=(present)": 0.5, "budget": 0.5}',
		'{"budget": {"mean": 10, "std": 2, "min": 0, "max": 20}}',
		'{}')
RETURNING model_id;

--
-- Budgets: missing, not a number, negative, beyond max_budget (1e12)
--
INSERT INTO scoring.lead (category, brand, budget, status)
VALUES ('pumps', 'Fubag', 10000, 'draft'),				-- 4: fine
	   ('pumps', 'Fubag', NULL, 'draft'),				-- 5
	   ('pumps', 'Fubag', 'NaN', 'draft'),				-- 6
	   ('pumps', 'Fubag', 'Infinity', 'draft'),			-- 7
	   ('pumps', 'Fubag', '-Infinity', 'draft'),		-- 8
	   ('pumps', 'Fubag', -100, 'draft'),				-- 9
	   ('pumps', 'Fubag', -0.01, 'draft'),				-- 10
	   ('pumps', 'Fubag', 1e300, 'draft'),				-- 11
	   ('pumps', 'Fubag', 1000000000000.01, 'draft'),	-- 12
	   ('pumps', 'Fubag', 1000000000000, 'draft'),		-- 13: the limit itself is fine
	   ('pumps', 'Fubag', 0, 'draft'),					-- 14: zero is a budget
	   ('pumps', 'Fubag', 0.004, 'draft');				-- 15
SELECT lead_id, budget::float8 AS budget, round(p_win::numeric, 6) AS p_win,
	   potential_profit, expected_profit, model_id, priority, score_flags
  FROM scoring.lead WHERE lead_id >= 4 ORDER BY lead_id;

--
-- Brands: unknown (default margin 0.15) or missing; such a lead goes to a
-- person even when its profit is below every band
--
INSERT INTO scoring.lead (category, brand, budget, status)
VALUES ('pumps', 'NoSuchBrand', 100000, 'draft'),	-- 16
	   ('pumps', NULL, 100000, 'draft'),			-- 17
	   ('pumps', 'NoSuchBrand', 100, 'draft'),		-- 18: below all bands: 4, not 5
	   ('pumps', '', 100, 'draft'),					-- 19: '' is a brand we do not know
	   ('pumps', 'Fubag', 100, 'draft');			-- 20: the same with a known brand: 5
SELECT lead_id, brand, budget, round(p_win::numeric, 6) AS p_win, potential_profit,
	   expected_profit, priority, score_flags
  FROM scoring.lead WHERE lead_id >= 16 ORDER BY lead_id;

--
-- Free features of every shape
--
INSERT INTO scoring.lead (category, brand, budget, status, features)
SELECT 'pumps', 'Fubag', 10000, 'draft', jsonb_object_agg('k' || i, i)	-- 21: 10,000 keys
  FROM generate_series(1, 10000) AS i;
INSERT INTO scoring.lead (category, brand, budget, status, features)
SELECT 'pumps', 'Fubag', 10000, 'draft', jsonb_object_agg('k' || i, 'v' || i)	-- 22: k5000 a string
  FROM generate_series(1, 10000) AS i;
INSERT INTO scoring.lead (category, brand, budget, status, features)
VALUES ('pumps', 'Fubag', 10000, 'draft', '{"colour": "red"}'),			-- 23
	   ('pumps', 'Fubag', 10000, 'draft', '{"colour": {"red": true}}'),	-- 24
	   ('pumps', 'Fubag', 10000, 'draft', '{"colour": ["red"]}'),			-- 25
	   ('pumps', 'Fubag', 10000, 'draft', '{"colour": null}'),			-- 26
	   ('pumps', 'Fubag', 10000, 'draft', '{"colour": "RED", "k5000": "Infinity"}'), -- 27
	   ('pumps', 'Fubag', 10000, 'draft', '{"k5000": 1e300}'),			-- 28
	   ('pumps', 'Fubag', 10000, 'draft', '{"k5000": true}'),				-- 29
	   ('pumps', 'Fubag', 10000, 'draft', '["colour", "red"]'),			-- 30
	   ('pumps', 'Fubag', 10000, 'draft', '"red"'),						-- 31
	   ('pumps', 'Fubag', 10000, 'draft', '42'),							-- 32
	   ('pumps', 'Fubag', 10000, 'draft', 'null'),						-- 33
	   ('pumps', 'Fubag', 10000, 'draft', '{}'),							-- 34
	   ('pumps', 'Fubag', 10000, 'draft', '{"": "", "colour": "red", "features": {"colour": "blue"}}'), -- 35
	   ('pumps', 'Fubag', 10000, 'draft',
		(repeat('{"a": [', 200) || '1' || repeat(']}', 200))::jsonb),		-- 36: deep
	   ('pumps', 'Fubag', 10000, 'draft',
		jsonb_build_object('colour', repeat('red', 100000)));				-- 37: long
SELECT lead_id, jsonb_typeof(features) AS features,
	   (SELECT count(*) FROM jsonb_object_keys(CASE WHEN jsonb_typeof(features) = 'object'
													THEN features END)) AS keys,
	   round(p_win::numeric, 6) AS p_win, expected_profit, priority, score_flags
  FROM scoring.lead WHERE lead_id >= 21 ORDER BY lead_id;

--
-- Refusal rules: a malformed condition is refused when stored; a rule
-- that matches wins over every fallback
--
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('bad', '{"budget": {"lt": "x"}}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('bad', '[{"shop": "x"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('bad', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rules FROM scoring.refusal_rule;
INSERT INTO scoring.refusal_rule (name, condition)
VALUES ('blue', '{"features.colour": "blue"}');
INSERT INTO scoring.lead (category, brand, budget, status, features)
VALUES ('pumps', 'Fubag', 'NaN', 'draft', '{"colour": "blue"}'),		-- 38
	   ('pumps', 'Nope', 100, 'draft', '{"colour": "blue"}'),			-- 39
	   ('pumps', 'Fubag', 1e9, 'draft', '{"colour": "blue"}'),			-- 40
	   ('pumps', 'Fubag', 1e9, 'draft', '{"colour": ["blue"]}');			-- 41: not blue
SELECT lead_id, budget, brand, priority, score_flags
  FROM scoring.lead WHERE lead_id >= 38 ORDER BY lead_id;

--
-- predict() with bad arguments
--
SELECT scoring.predict('[]');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.predict('"welding"');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.predict('null');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.predict('{"category": "welding"}', NULL, 999);
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.predict(NULL) AS null_in_null_out;
SELECT round(scoring.predict('{"category": "welding", "budget": "lots", "colour": "red", "features": [1]}')::numeric, 6) AS top_level_features;

--
-- The model row: a hand edit that would break scoring fails (SC003) and
-- changes nothing; a good edit scores the next lead
--
UPDATE scoring.model SET weights = weights || '{"category=welding": "3"}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET weights = weights || '{"category=welding": null}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET weights = weights || '{"category=welding": {"w": 3}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET weights = weights || '{"category=welding": 1e400}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET weights = '[1, 2]';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET weights = '3';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET intercept = 'NaN';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET intercept = '-Infinity';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": {"mean": 10, "std": 0, "min": 0, "max": 20}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": {"mean": 10, "std": -2, "min": 0, "max": 20}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": {"mean": 10, "std": 2, "min": 21, "max": 20}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": {"mean": 10, "std": 2, "min": 0}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": {"mean": "NaN", "std": 2, "min": 0, "max": 20}}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET numeric_features = '{"budget": [10, 2, 0, 20]}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET ltv = '{"person": -1}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET ltv = '{"person": "100"}';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.model SET ltv = '[]';
\echo :LAST_ERROR_SQLSTATE
-- at most one model is active
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won, intercept, weights)
VALUES (true, '2024-01-01 00:00+00', '2025-01-01 00:00+00', 0, 0, 0, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT model_id, active, intercept, weights, numeric_features, ltv FROM scoring.model;

-- a good edit: welding now adds 3 to the logit
UPDATE scoring.model SET weights = jsonb_set(weights, '{category=welding}', '3');
INSERT INTO scoring.lead (category, brand, budget, status)
VALUES ('welding', 'Fubag', 10000, 'draft');		-- 42
SELECT lead_id, round(p_win::numeric, 6) AS p_win, model_id, priority
  FROM scoring.lead WHERE lead_id = 42;

--
-- Brand margins are 0..1; a wrong one fails and changes nothing
--
INSERT INTO scoring.brand (brand, margin) VALUES ('Neg', -0.1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.brand (brand, margin) VALUES ('Big', 1.5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.brand (brand, margin) VALUES ('Nan', 'NaN');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.brand (brand, margin) VALUES ('Null', NULL);
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.brand SET margin = -0.2 WHERE brand = 'Fubag';
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.brand SET margin = 1.0001 WHERE brand = 'Fubag';
\echo :LAST_ERROR_SQLSTATE
SELECT brand, margin FROM scoring.brand;
-- the bounds themselves are margins
INSERT INTO scoring.brand (brand, margin) VALUES ('Free', 0), ('All', 1);
INSERT INTO scoring.lead (category, brand, budget, status)
VALUES ('pumps', 'Free', 10000, 'draft'),	-- 43
	   ('pumps', 'All', 10000, 'draft');	-- 44
SELECT lead_id, brand, potential_profit, priority, score_flags
  FROM scoring.lead WHERE lead_id >= 43 ORDER BY lead_id;

-- priority bands are 1..4 with a finite, non-negative threshold
INSERT INTO scoring.priority_band VALUES (5, 10);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.priority_band VALUES (0, 10);
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.priority_band SET min_expected_profit = -1 WHERE priority = 4;
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.priority_band SET min_expected_profit = 'Infinity' WHERE priority = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.priority_band SET min_expected_profit = 'NaN' WHERE priority = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT priority, min_expected_profit FROM scoring.priority_band ORDER BY priority;

--
-- Training: wrong calls and data a model cannot be learned from fail and
-- leave the active model alone
--
INSERT INTO scoring.lead (created_at, category, brand, budget, status)
SELECT '2019-03-01 00:00+00'::timestamptz + i * interval '1 day', 'pumps', 'Fubag', 1000, 'won'
  FROM generate_series(1, 30) AS i;
INSERT INTO scoring.lead (created_at, category, brand, budget, status)
SELECT '2018-03-01 00:00+00'::timestamptz + i * interval '1 day', 'pumps', 'Fubag', 1000, 'lost'
  FROM generate_series(1, 30) AS i;
SELECT scoring.train(NULL, '2025-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2024-01-01', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2024-01-01', '2024-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2025-01-01', '2024-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('-infinity', 'infinity', '{"nope": 1}');
\echo :LAST_ERROR_SQLSTATE
-- an empty window, all won, all lost
SELECT scoring.train('2000-01-01', '2001-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2019-01-01', '2020-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2019-01-01');
\echo :LAST_ERROR_SQLSTATE
-- bad options
SELECT scoring.train('2018-01-01', '2020-01-01', '{"l2": "strong"}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"l2": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"l2": null}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"min_count": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"holdout": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"holdout": -0.1}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"max_iter": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"warm_sample": -1}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"seed": "abc"}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"ltv": "yes"}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"ltv_months": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"set_bands": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"activate": "false"}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": [0.1, 0.2, 0.3]}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": [0.1, 0.2, 0.3, 0.4, 0.5]}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": [0.5, 0.2, 0.6, 0.9]}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": [0, 0.2, 0.6, 0.9]}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": [0.1, 0.2, 0.6, 1]}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '{"band_shares": "0.1,0.2,0.6,0.9"}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '["l2", 1]');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2018-01-01', '2020-01-01', '1');
\echo :LAST_ERROR_SQLSTATE
-- nothing changed: still the hand-made model, the same bands
SELECT model_id, active, weights->'category=welding' AS welding FROM scoring.model;
SELECT priority, min_expected_profit FROM scoring.priority_band ORDER BY priority;

-- closed leads with every kind of bad data train a model all the same
INSERT INTO scoring.lead (created_at, category, brand, budget, status, features)
SELECT '2020-01-01 00:00+00'::timestamptz + i * interval '1 day',
	   CASE WHEN i % 2 = 0 THEN 'welding' ELSE NULL END,
	   (ARRAY['Fubag', 'Nope', NULL])[1 + i % 3],
	   (ARRAY[1000, NULL, 'NaN', 'Infinity', '-Infinity', -5, 1e300, 0]::numeric[])[1 + i % 8],
	   CASE WHEN i % 3 = 0 THEN 'won' ELSE 'lost' END,
	   (ARRAY['{}', '[1, 2]', '"x"', 'null', '{"colour": {"a": 1}}', '{"colour": "red"}',
			  '{"n": 1e300}', '{"n": -1e300}'])[1 + i % 8]::jsonb
  FROM generate_series(1, 80) AS i;
INSERT INTO scoring.lead (created_at, category, brand, budget, status, features)
SELECT '2020-06-01 00:00+00', 'welding', 'Fubag', 5000, 'won', jsonb_object_agg('k' || i, i)
  FROM generate_series(1, 10000) AS i;
SELECT scoring.train('2020-01-01', '2021-01-01', '{"ltv": false}') AS model_id;
SELECT model_id, active, n_rows, n_won,
	   (metrics->'train'->>'sum_p_over_wins')::numeric BETWEEN 0.999 AND 1.001 AS calibrated
  FROM scoring.model ORDER BY model_id;
INSERT INTO scoring.lead (category, brand, budget, status, features)
SELECT 'welding', 'Fubag', 1000, 'draft', jsonb_object_agg('k' || i, i)	-- 186
  FROM generate_series(1, 10000) AS i;
SELECT lead_id, p_win > 0 AND p_win < 1 AS p_win_ok, model_id, score_flags
  FROM scoring.lead WHERE lead_id = 186;

--
-- Every lead is still there: 186 of them, each with a priority
--
SELECT count(*) AS leads, count(priority) AS with_priority,
	   count(*) FILTER (WHERE priority BETWEEN 1 AND 5) AS priority_1_to_5
  FROM scoring.lead;
SELECT score_flags, count(*) AS leads, min(priority) AS min_priority,
	   max(priority) AS max_priority
  FROM scoring.lead GROUP BY score_flags ORDER BY score_flags;

-- a close with a won profit that is not a number fails (23514) and changes
-- nothing: the monthly totals could never take NaN or infinity back out
SELECT sum(leads) AS leads, sum(won_profit) AS won FROM scoring.lead_totals;
UPDATE scoring.lead SET status = 'won', won_profit = 'NaN'
 WHERE lead_id = (SELECT min(lead_id) FROM scoring.lead);
UPDATE scoring.lead SET status = 'won', won_profit = 'Infinity'
 WHERE lead_id = (SELECT min(lead_id) FROM scoring.lead);
UPDATE scoring.lead SET forecast_profit = '-Infinity'
 WHERE lead_id = (SELECT min(lead_id) FROM scoring.lead);
SELECT count(*) FILTER (WHERE status = 'won') AS won_leads FROM scoring.lead;
SELECT sum(leads) AS leads, sum(won_profit) AS won FROM scoring.lead_totals;

SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

-- the server is still up
SELECT 1 AS alive;
