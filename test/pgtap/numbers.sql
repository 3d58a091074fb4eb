--
-- test/pgtap/numbers.sql
--	A number of a lead's features, read from its numeric to a double
--	(features.c): short numerics straight from their base-10000 digits,
--	the rest through text.  Both must give the double nearest the number,
--	bit for bit, or a model would score a lead otherwise than it trained.
--
--	Each pair below is one number written twice: short (read from its
--	digits) and with a tail far below half a unit in the last place of a
--	double (too many digits for that: read through text, as strtod reads
--	it), so the two name the same double.  Model i has the long one as the
--	mean of features.x, a standard deviation of 1e-300 and weight 1, so
--	predicting {"x": short} gives exactly 0.5 when the two doubles are the
--	same and 0 or 1 when they differ in the last bit.
--
--	The other way, a double to a numeric: the trigger multiplies p_win into
--	the profits as float8_numeric() gives it (15 significant digits) but
--	without its printf() (lead_trigger.c, double_numeric()), so 20,000 leads
--	whose p_win spans 1e-9 .. 1 - 1e-9, with budgets up to 1e13 (where the
--	fifteenth digit of p_win shows in the kopecks), must show exactly the
--	profits that SQL computes from p_win::numeric.
--
BEGIN;
SELECT plan(30);

CREATE TEMP TABLE pair (i int PRIMARY KEY, short text, long text);
INSERT INTO pair VALUES
	(1, '7', '7.0000000000000000000000000000001'),
	(2, '-7', '-7.0000000000000000000000000000001'),
	(3, '0.1', '0.1000000000000000000000000000001'),
	(4, '-0.25', '-0.2500000000000000000000000000001'),
	(5, '23200', '23200.0000000000000000000000000001'),
	(6, '123456.789', '123456.7890000000000000000000000001'),
	(7, '0.0000001', '0.0000001000000000000000000000000000001'),
	(8, '1e-7', '0.0000001000000000000000000000000000001'),
	(9, '99999999.9999', '99999999.99990000000000000000000001'),
	(10, '12345678.12345678', '12345678.123456780000000000000000001'),
	(11, '9007199254740992', '9007199254740992.00000000000000000001'),
	(12, '9007199254740996', '9007199254740996.00000000000000000001'),
	(13, '1e22', '10000000000000000000000.00000000000000000001'),
	(14, '-3e21', '-3000000000000000000000.00000000000000000001'),
	(15, '1.5e-20', '0.0000000000000000000150000000000000000000000000000001'),
	(16, '3.3e-30', '0.00000000000000000000000000000330000000000000000000000000000000000001'),
	(17, '0.3333', '0.33330000000000000000000000000000001'),
	(18, '2.675', '2.67500000000000000000000000000000001'),
	(19, '1e300', '1' || repeat('0', 300) || '.00000000000000000001'),
	-- the long form of numeric: a display scale over 63, a weight over 63
	(20, '0.5' || repeat('0', 70), '0.5' || repeat('0', 80) || '1'),
	(21, '-123.45' || repeat('0', 70), '-123.45' || repeat('0', 80) || '1'),
	(22, '1' || repeat('0', 260), '1' || repeat('0', 260) || '.00000000000000000001'),
	(23, '0.000000000001', '0.0000000000010000000000000000000000000001'),
	-- four digits of base 10000 but above 2^53: rounded twice if read from them
	(24, '913996208434.0797', '913996208434.07970000000000000000001');

INSERT INTO scoring.model (model_id, active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features)
SELECT i, false, '2024-01-01', '2025-01-01', 0, 0, 0, '{"features.x": 1}',
	   format('{"features.x": {"mean": %s, "std": 1e-300, "min": -1e308, "max": 1e308, "log": false}}',
			  long)::jsonb
  FROM pair;

SELECT is(scoring.predict(format('{"x": %s}', short)::jsonb, NULL, i), 0.5::float8,
		  format('pair %s: %s is read as the double its long form is', i, left(short, 24)))
  FROM pair
 ORDER BY i;

-- the double is the one float8 reads from the same text
SELECT is(count(*), 0::bigint, 'each short form is the double float8 reads from it')
  FROM pair
 WHERE scoring.predict(format('{"x": %s}', short)::jsonb, NULL, i) <> 0.5
    OR short::float8 <> long::float8;

-- zero, and numbers past a double, as before
SELECT is(scoring.predict('{"x": 0}', NULL, 3) < 0.5, true,
		  '0 is below 0.1');
SELECT is(scoring.predict('{"x": 1e400}', NULL, 3), scoring.predict('{}', NULL, 3),
		  'a number past a double is not a number of the lead');

-- p_win into the profits, as p_win::numeric
INSERT INTO scoring.model (model_id, active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features)
VALUES (100, true, '2024-01-01', '2025-01-01', 0, 0, 0, '{"features.x": 1}',
		'{"features.x": {"mean": 0, "std": 1, "min": -1e308, "max": 1e308, "log": false}}');
INSERT INTO scoring.brand (brand, margin) VALUES ('b', 0.17);
-- budgets up to 1e13: a p_win one digit short moves most profits' kopecks
INSERT INTO scoring.setting (name, value) VALUES ('max_budget', '1e14');
SELECT setseed(0.20261206);
INSERT INTO scoring.lead (shop, category, brand, budget, features, status)
SELECT 'web', 'pumps', 'b', round((random() * 10 ^ (random() * 13))::numeric, (i % 3)),
	   jsonb_build_object('x', (random() * 42 - 21)::float8), 'draft'
  FROM generate_series(1, 20000) i;
-- budgets of more than sixteen digits (computed in numeric, not in the
-- trigger's integers) and budgets whose profit ends in exactly half a
-- kopeck, to be rounded away from zero: (j + 0.50) x 0.17 = 0.17 j + 0.085
INSERT INTO scoring.lead (shop, category, brand, budget, features, status)
SELECT 'web', 'pumps', 'b', round((random() * 10 ^ (random() * 13))::numeric, 4 + i % 3),
	   jsonb_build_object('x', (random() * 42 - 21)::float8), 'draft'
  FROM generate_series(1, 2000) i
UNION ALL
SELECT 'web', 'pumps', 'b', floor(random() * 10 ^ (random() * 10))::numeric + 0.50,
	   jsonb_build_object('x', (random() * 42 - 21)::float8), 'draft'
  FROM generate_series(1, 2000) i;
SELECT is(count(*), 0::bigint,
		  'the potential profit is budget times margin, to the kopeck, halves rounded up')
  FROM scoring.lead
 WHERE model_id = 100
   AND potential_profit <> round(budget * 0.17 + ltv_uplift, 2);
SELECT is(count(*), 0::bigint,
		  'expected and forecast profit are p_win::numeric times the profit, to the kopeck')
  FROM scoring.lead
 WHERE model_id = 100
   AND (expected_profit <> round(p_win::numeric * potential_profit, 2)
		OR forecast_profit <> round(p_win::numeric * (budget * 0.17), 2));
SELECT ok(min(p_win) < 1e-8 AND max(p_win) > 1 - 1e-8 AND count(DISTINCT p_win) > 23000,
		  'the leads span p_win from below 1e-8 to above 1 - 1e-8')
  FROM scoring.lead WHERE model_id = 100;

SELECT * FROM finish();
ROLLBACK;
