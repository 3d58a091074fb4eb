--
-- test/pgtap/bins.sql
--	Ranges of numbers (src/bins.c): train() cuts every number it keeps
--	into ranges with a coefficient each, so that a model can say "the
--	youngest and the oldest buy more"; predict(), the trigger and
--	explain() put a value in the range training put it in.
--
--	The data: a lead's free number "age" (18..77, every value 50 times)
--	wins with 60 % below 25 and above 65 and 15 % in between: a U that no
--	straight line can follow.  u is a deterministic uniform number in
--	[0, 1) per lead.
--
BEGIN;
SELECT plan(31);

SET LOCAL timezone = 'UTC';

CREATE TEMP TABLE gen AS
SELECT i, 18 + i % 60 AS age,
	   ((i::bigint * 2654435761) % 4294967296) / 4294967296.0 AS u,
	   '2023-01-01 00:00+00'::timestamptz + i * interval '2 hours' AS created_at
  FROM generate_series(1, 3000) AS i;
INSERT INTO scoring.lead (lead_id, created_at, category, features, status, closed_at)
SELECT i, created_at, 'welding', jsonb_build_object('age', age),
	   CASE WHEN u < CASE WHEN age < 25 OR age > 65 THEN 0.6 ELSE 0.15 END
			THEN 'won' ELSE 'lost' END,
	   created_at + interval '1 day'
  FROM gen;

CREATE TEMP TABLE m (name text, id int);
INSERT INTO m SELECT 'bins', scoring.train('2023-01-01', '2024-01-01', '{"holdout": 0.3, "seed": 7, "activate": false}');
INSERT INTO m SELECT 'line', scoring.train('2023-01-01', '2024-01-01', '{"holdout": 0.3, "seed": 7, "activate": false, "bins": 0}');
INSERT INTO m SELECT 'all', scoring.train('2023-01-01', '2024-01-01', '{"holdout": 0, "set_bands": false}');
CREATE TEMP VIEW mm AS SELECT m.name, model.* FROM m JOIN scoring.model model ON model.model_id = m.id;

--
-- What train() stores
--
SELECT is((SELECT jsonb_array_length(numeric_features->'features.age'->'cuts') FROM mm WHERE name = 'bins'),
		  7, 'the default 8 ranges of a number: 7 cuts');
SELECT is((SELECT numeric_features->'features.age'->'cuts' FROM mm WHERE name = 'bins'),
		  '[25, 33, 40, 48, 55, 63, 70]'::jsonb,
		  'cuts are round numbers near the eighths of the values');
SELECT ok((SELECT NOT numeric_features->'features.age' ? 'cuts' FROM mm WHERE name = 'line'),
		  '{"bins": 0}: no cuts');
SELECT is((SELECT count(*) FROM mm, jsonb_object_keys(weights) k
			WHERE name = 'bins' AND (k LIKE 'features.age=[%' OR k LIKE 'features.age=(-inf, %')),
		  8::bigint, 'a coefficient per range, named by its bounds');
SELECT ok((SELECT weights ? 'features.age=(-inf, 25)' AND weights ? 'features.age=[25, 33)'
				  AND weights ? 'features.age=[70, +inf)' FROM mm WHERE name = 'bins'),
		  'the first range is open below, the last open above');
SELECT is((SELECT count(*) FROM mm, jsonb_object_keys(weights) k WHERE name = 'line' AND k LIKE 'features.age=%'
				  AND k <> 'features.age=(present)'),
		  0::bigint, 'without ranges the number has its line and (present) only');
SELECT ok((SELECT (metrics->'holdout'->>'auc')::float8 FROM mm WHERE name = 'bins') >
		  (SELECT (metrics->'holdout'->>'auc')::float8 FROM mm WHERE name = 'line') + 0.1,
		  'on a U-shaped effect the ranges win on the holdout AUC by more than 0.1');
-- (the true probabilities would reach about 0.73)
SELECT ok((SELECT (metrics->'holdout'->>'auc')::float8 FROM mm WHERE name = 'bins') > 0.65,
		  'the ranges find the U (holdout AUC above 0.65)');

--
-- Scoring puts a value where training did
--
SELECT ok(scoring.predict('{"features": {"age": 20}}', NULL, id) > 0.5 AND
		  scoring.predict('{"features": {"age": 70}}', NULL, id) > 0.5 AND
		  scoring.predict('{"features": {"age": 45}}', NULL, id) < 0.25, 'predict: young and old win, the middle does not')
  FROM m WHERE name = 'bins';
-- a cut belongs to the range above it: 25 scores as 32 would but for the line
SELECT ok(abs(ln(p25 / (1 - p25)) - ln(p24 / (1 - p24))) > 0.3, 'the cut at 25 separates 24 from 25')
  FROM (SELECT scoring.predict('{"features": {"age": 24}}', NULL, id) AS p24,
			   scoring.predict('{"features": {"age": 25}}', NULL, id) AS p25 FROM m WHERE name = 'bins') s;
SELECT ok(abs(ln(p25 / (1 - p25)) - ln(p249 / (1 - p249))) > 0.3, '24.9 is below the cut, 25 at it')
  FROM (SELECT scoring.predict('{"features": {"age": 24.9}}', NULL, id) AS p249,
			   scoring.predict('{"features": {"age": 25}}', NULL, id) AS p25 FROM m WHERE name = 'bins') s;

-- The model fitted on every lead without a holdout predicts as many wins as
-- there were on its own leads (the unpenalised intercept): true only if the
-- trigger puts every lead in the range training put it in.
SELECT scoring.rescore(false);
SELECT ok(abs(sum(p_win) - count(*) FILTER (WHERE status = 'won')) < 1e-6 * count(*),
		  'rescored with the model: sum of p_win = wins on its own leads')
  FROM scoring.lead;
SELECT ok(abs(sum(-ln(CASE WHEN status = 'won' THEN p_win ELSE 1 - p_win END)) / count(*)
			  - (SELECT (metrics->'train'->>'log_loss')::float8 FROM mm WHERE name = 'all')) < 1e-6,
		  'the log-loss of the rescored leads is the one train() measured (to its 6 decimals)')
  FROM scoring.lead;

--
-- explain() names the range
--
SELECT is((SELECT value FROM scoring.explain(10) WHERE feature = 'features.age'),
		  '28 in [25, 33)', 'explain shows a number once, with its range')
  FROM gen WHERE i = 10 AND age = 28;
SELECT ok(abs((SELECT sum(contribution) FROM scoring.explain(10))
			  - (SELECT ln(p_win / (1 - p_win)) FROM scoring.lead WHERE lead_id = 10)) < 1e-9,
		  'the terms of explain, range included, add up to the score');

--
-- What is not cut
--
-- a number that is always the same: no line, no ranges
UPDATE scoring.lead SET features = features || '{"flat": 5}';
INSERT INTO m SELECT 'flat', scoring.train('2023-01-01', '2024-01-01', '{"activate": false}');
SELECT ok((SELECT NOT numeric_features ? 'features.flat' AND NOT weights ? 'features.flat=(-inf, 5)' FROM mm WHERE name = 'flat'),
		  'a constant number has neither line nor ranges');
-- two values: one cut between them, at the rounder number
UPDATE scoring.lead SET features = features || jsonb_build_object('two', CASE WHEN lead_id % 3 = 0 THEN 1 ELSE 2 END);
INSERT INTO m SELECT 'two', scoring.train('2023-01-01', '2024-01-01', '{"activate": false}');
SELECT is((SELECT numeric_features->'features.two'->'cuts' FROM mm WHERE name = 'two'), '[2]'::jsonb,
		  'two values: a single cut');
-- a key that is sometimes a string named like one of its ranges keeps its line only
UPDATE scoring.lead SET features = features || '{"two": "[2, +inf)"}' WHERE lead_id % 100 = 1;
INSERT INTO m SELECT 'clash', scoring.train('2023-01-01', '2024-01-01', '{"activate": false}');
SELECT ok((SELECT numeric_features ? 'features.two' AND NOT numeric_features->'features.two' ? 'cuts'
				  AND weights ? 'features.two=[2, +inf)' FROM mm WHERE name = 'clash'),
		  'a string level named like a range: the number is not cut, the level keeps its name');
-- negative numbers and tiny fractions are cut too, at round numbers
UPDATE scoring.lead SET features = features || jsonb_build_object('delta', (lead_id % 40 - 20) / 1000.0);
INSERT INTO m SELECT 'delta', scoring.train('2023-01-01', '2024-01-01', '{"activate": false, "bins": 4}');
SELECT is((SELECT numeric_features->'features.delta'->'cuts' FROM mm WHERE name = 'delta'),
		  '[-0.01, 0, 0.01]'::jsonb, 'negative and fractional values: round cuts around 0');
-- numbers at the ends of a double: cut, named and scored without trouble
UPDATE scoring.lead SET features = features || jsonb_build_object(
	'huge', CASE lead_id % 5 WHEN 0 THEN 1e300 WHEN 1 THEN -1e300 WHEN 2 THEN 1e-300 WHEN 3 THEN 0
							 ELSE (lead_id % 7)::numeric END);
INSERT INTO m SELECT 'huge', scoring.train('2023-01-01', '2024-01-01', '{"activate": false}');
SELECT is((SELECT jsonb_array_length(numeric_features->'features.huge'->'cuts') FROM mm WHERE name = 'huge'),
		  3, 'values from -1e300 to 1e300: three cuts');
SELECT ok(p BETWEEN 0 AND 1, 'a lead with a number past every cut scores: ' || x)
  FROM m, LATERAL (VALUES ('1e308'), ('-1e308'), ('1e-320')) v(x),
	   LATERAL (SELECT scoring.predict(jsonb_build_object('features', jsonb_build_object('huge', x::numeric)), NULL, id) AS p) s
 WHERE name = 'huge';
-- values at the largest double, where a stored value may stand for more
UPDATE scoring.lead SET features = features || jsonb_build_object(
	'edge', CASE WHEN lead_id % 2 = 0 THEN 1.7976931348623157e308 ELSE 1e308 END);
INSERT INTO m SELECT 'edge', scoring.train('2023-01-01', '2024-01-01', '{"activate": false}');
SELECT ok((SELECT numeric_features ? 'features.edge' FROM mm WHERE name = 'edge')
		  AND scoring.predict('{"features": {"edge": 1.7976931348623157e308}}', NULL, id) BETWEEN 0 AND 1,
		  'numbers up to the largest double: trained and scored')
  FROM m WHERE name = 'edge';
-- option checks
SELECT throws_ok($$SELECT scoring.train('2023-01-01', '2024-01-01', '{"bins": 33}')$$, '22023', NULL,
				 'bins above 32: invalid_parameter_value');
SELECT throws_ok($$SELECT scoring.train('2023-01-01', '2024-01-01', '{"bins": "many"}')$$, '22023', NULL,
				 'bins not a number: invalid_parameter_value');

--
-- A model edited by hand: the cuts are checked
--
SELECT throws_ok(format($$UPDATE scoring.model SET numeric_features = jsonb_set(numeric_features, '{features.age,cuts}', '[40, 30]') WHERE model_id = %s$$, id),
				 'SC003', 'invalid model', 'cuts that do not increase: SC003')
  FROM m WHERE name = 'bins';
SELECT throws_ok(format($$UPDATE scoring.model SET numeric_features = jsonb_set(numeric_features, '{features.age,cuts}', '"25"') WHERE model_id = %s$$, id),
				 'SC003', 'invalid model', 'cuts not an array: SC003')
  FROM m WHERE name = 'bins';
SELECT throws_ok(format($$UPDATE scoring.model SET numeric_features = jsonb_set(numeric_features, '{features.age,cuts}', '[25, "NaN"]') WHERE model_id = %s$$, id),
				 'SC003', 'invalid model', 'a cut that is not a finite number: SC003')
  FROM m WHERE name = 'bins';
SELECT throws_ok(format($$UPDATE scoring.model SET numeric_features = jsonb_set(numeric_features, '{features.age,cuts}', (SELECT jsonb_agg(g) FROM generate_series(1, 40) g)) WHERE model_id = %s$$, id),
				 'SC003', 'invalid model', 'more than 31 cuts: SC003')
  FROM m WHERE name = 'bins';
-- cuts whose ranges have no coefficient are allowed and add nothing
CREATE TEMP TABLE line_before AS
SELECT a, scoring.predict(jsonb_build_object('features', jsonb_build_object('age', a)), NULL, id) AS p
  FROM m, generate_series(0, 90, 5) a WHERE name = 'line';
UPDATE scoring.model SET numeric_features = jsonb_set(numeric_features, '{features.age,cuts}', '[10, 20]')
 WHERE model_id = (SELECT id FROM m WHERE name = 'line');
SELECT is((SELECT count(*) FROM line_before b, m
			WHERE name = 'line' AND b.p = scoring.predict(jsonb_build_object('features', jsonb_build_object('age', a)), NULL, id)),
		  19::bigint, 'cuts without range coefficients change no score');

SELECT * FROM finish();
ROLLBACK;
