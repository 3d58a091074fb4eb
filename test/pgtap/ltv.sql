--
-- test/pgtap/ltv.sql
--	Lifetime uplift (SPEC §1.4): production companies in a core industry
--	buy again within 12 months, persons do not.  train() learns the
--	uplift per client segment from the leads won in the 12 months before
--	the last 12 months of the window (the mean profit their clients
--	brought in the 12 months after, shrunk as if 10 more leads had brought
--	nothing); the trigger adds it to the potential profit of new leads.
--
BEGIN;
SELECT plan(22);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);
-- 1..30 production companies (core), 31..60 persons, 61..80 traders
INSERT INTO scoring.client (client_id, kind, industry, core_industry)
SELECT c,
	   CASE WHEN c BETWEEN 31 AND 60 THEN 'person' ELSE 'company' END,
	   CASE WHEN c <= 30 THEN 'production' WHEN c > 60 THEN 'trade' END,
	   CASE WHEN c <= 30 THEN true WHEN c > 60 THEN false END
  FROM generate_series(1, 80) AS c;

-- every client's first lead, won in June 2023 (5000 profit)
INSERT INTO scoring.lead (created_at, client_id, category, brand, budget, status, closed_at, won_profit)
SELECT '2023-06-01 00:00+00'::timestamptz + c * interval '1 hour', c, 'welding', 'Fubag', 25000,
	   'won', '2023-06-10 00:00+00'::timestamptz + c * interval '1 hour', 5000
  FROM generate_series(1, 80) AS c;
-- production companies buy again three times before June 2024 (10000 each)
INSERT INTO scoring.lead (created_at, client_id, category, brand, budget, status, closed_at, won_profit)
SELECT d + c * interval '1 hour', c, 'consumables', 'Fubag', 50000,
	   'won', d + c * interval '1 hour' + interval '5 days', 10000
  FROM generate_series(1, 30) AS c,
	   unnest(ARRAY['2024-01-15 00:00+00', '2024-03-15 00:00+00', '2024-05-15 00:00+00']::timestamptz[]) AS d;
-- traders come back once, and the deal ends in a refund (-1000)
INSERT INTO scoring.lead (created_at, client_id, category, brand, budget, status, closed_at, won_profit)
SELECT '2024-02-01 00:00+00'::timestamptz + c * interval '1 hour', c, 'compressors', 'Fubag', 10000,
	   'won', '2024-02-05 00:00+00'::timestamptz + c * interval '1 hour', -1000
  FROM generate_series(61, 80) AS c;
-- persons come back once too, and buy nothing
INSERT INTO scoring.lead (created_at, client_id, category, brand, budget, status, closed_at)
SELECT '2024-03-01 00:00+00'::timestamptz + c * interval '1 hour', c, 'generators', 'Fubag', 10000,
	   'lost', '2024-03-05 00:00+00'::timestamptz + c * interval '1 hour'
  FROM generate_series(31, 60) AS c;
-- and some leads without a client, lost
INSERT INTO scoring.lead (created_at, category, brand, budget, status, closed_at)
SELECT '2024-04-01 00:00+00'::timestamptz + i * interval '1 day', 'generators', 'Fubag', 10000,
	   'lost', '2024-04-03 00:00+00'::timestamptz + i * interval '1 day'
  FROM generate_series(1, 40) AS i;

CREATE TEMP TABLE m AS
SELECT 'default'::text AS name,
	   scoring.train('2024-01-01', '2025-01-01', '{"activate": false, "set_bands": true}') AS id;
INSERT INTO m SELECT 'six_months', scoring.train('2024-01-01', '2025-01-01', '{"ltv_months": 6, "activate": false}');
INSERT INTO m SELECT 'no_ltv', scoring.train('2024-01-01', '2025-01-01', '{"ltv": false, "activate": false}');
CREATE FUNCTION pg_temp.ltv(which text) RETURNS jsonb LANGUAGE sql AS
	$$ SELECT ltv FROM scoring.model WHERE model_id = (SELECT id FROM m WHERE name = which) $$;
CREATE FUNCTION pg_temp.metrics(which text) RETURNS jsonb LANGUAGE sql AS
	$$ SELECT metrics FROM scoring.model WHERE model_id = (SELECT id FROM m WHERE name = which) $$;

--
-- What train() learnt
--
SELECT ok((pg_temp.ltv('default')->>'company/production/core')::numeric
		  > coalesce((pg_temp.ltv('default')->>'person')::numeric, 0),
		  'production companies in a core industry are worth more than persons');
SELECT is((pg_temp.ltv('default')->>'company/production/core')::numeric, 22500::numeric,
		  '30 clients who bought 30000 more each: 30 x 30000 / (30 + 10) = 22500');
SELECT ok(NOT pg_temp.ltv('default') ? 'person', 'persons bought nothing more: no uplift stored');
SELECT ok(NOT pg_temp.ltv('default') ? 'company/trade/non-core',
		  'a segment that brought refunds gets no (negative) uplift');
SELECT is(pg_temp.metrics('default')->'ltv'->'leads', '80'::jsonb,
		  'the uplift is learnt from the 80 leads won in 2023');
SELECT is((pg_temp.metrics('default')->'ltv'->>'segments')::int, 4,
		  'four segments seen: production, trade, person and no client');
-- ltv_months 6: won leads of January..June 2024, their next 6 months:
-- 20000, 10000 and 0 after the three purchases of each production client
SELECT is((pg_temp.ltv('six_months')->>'company/production/core')::numeric, 9000::numeric,
		  'ltv_months 6: 90 leads that brought 900000: 900000 / (90 + 10) = 9000');
SELECT is(pg_temp.metrics('six_months')->'ltv'->'leads', '110'::jsonb,
		  'ltv_months 6: learnt from the 110 leads won in January..June 2024');
SELECT is(pg_temp.ltv('no_ltv'), '{}'::jsonb, 'ltv false: no uplift');
SELECT is(pg_temp.metrics('no_ltv')->'ltv'->'leads', '0'::jsonb, 'ltv false: learnt from no lead');

--
-- The uplift in the score of a new lead
--
UPDATE scoring.model SET active = (model_id = (SELECT id FROM m WHERE name = 'default'));
INSERT INTO scoring.lead (lead_id, client_id, category, brand, budget, status)
VALUES (1001, 1, 'welding', 'Fubag', 10000, 'draft'),		-- production, core
	   (1002, 31, 'welding', 'Fubag', 10000, 'draft'),		-- person
	   (1003, 61, 'welding', 'Fubag', 10000, 'draft'),		-- trade
	   (1004, NULL, 'welding', 'Fubag', 10000, 'draft'),	-- no client
	   (1005, 1, 'welding', 'Nope', 10000, 'draft'),		-- unknown brand
	   (1006, 1, 'welding', 'Fubag', NULL, 'draft');		-- no budget
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1001),
		  '(22500.00,24500.00)', 'a production company: uplift 22500 on top of 10000 x 0.2');
SELECT is((SELECT expected_profit FROM scoring.lead WHERE lead_id = 1001),
		  (SELECT round(p_win::numeric * 24500, 2) FROM scoring.lead WHERE lead_id = 1001),
		  'expected profit includes the uplift');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1002),
		  '(0.00,2000.00)', 'a person: no uplift');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1003),
		  '(0.00,2000.00)', 'a trader: no uplift');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1004),
		  '(0.00,2000.00)', 'no client: no uplift');
SELECT is((SELECT (ltv_uplift, potential_profit, score_flags)::text FROM scoring.lead WHERE lead_id = 1005),
		  '(22500.00,24000.00,{unknown_brand})', 'an unknown brand: default margin plus the uplift');
SELECT is((SELECT (ltv_uplift, potential_profit, expected_profit, priority, score_flags)::text
			 FROM scoring.lead WHERE lead_id = 1006),
		  '(,,,2,{no_budget})', 'no budget: no profit at all, uplift included');

-- the client's segment decides, and it is read at scoring time
UPDATE scoring.client SET core_industry = false WHERE client_id = 1;
UPDATE scoring.lead SET budget = budget WHERE lead_id = 1001;
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1001),
		  '(0.00,2000.00)', 'the client is no longer in a core industry: no uplift on rescoring');
UPDATE scoring.client SET core_industry = true WHERE client_id = 1;

-- the model with ltv_months 6 and the one without uplift
UPDATE scoring.model SET active = (model_id = (SELECT id FROM m WHERE name = 'six_months'));
INSERT INTO scoring.lead (lead_id, client_id, category, brand, budget, status)
VALUES (1011, 1, 'welding', 'Fubag', 10000, 'draft');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1011),
		  '(9000.00,11000.00)', 'ltv_months 6: uplift 9000');
UPDATE scoring.model SET active = (model_id = (SELECT id FROM m WHERE name = 'no_ltv'));
INSERT INTO scoring.lead (lead_id, client_id, category, brand, budget, status)
VALUES (1021, 1, 'welding', 'Fubag', 10000, 'draft');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1021),
		  '(0.00,2000.00)', 'ltv false: no uplift');

-- an uplift edited by hand is used by the next lead
UPDATE scoring.model SET ltv = '{"person": 1234.5}' WHERE active;
INSERT INTO scoring.lead (lead_id, client_id, category, brand, budget, status)
VALUES (1031, 31, 'welding', 'Fubag', 10000, 'draft');
SELECT is((SELECT (ltv_uplift, potential_profit)::text FROM scoring.lead WHERE lead_id = 1031),
		  '(1234.50,3234.50)', 'an uplift set by hand');
SELECT throws_ok($$UPDATE scoring.model SET ltv = '{"person": -1}' WHERE active$$, 'SC003', NULL,
				 'a negative uplift set by hand is refused');

SELECT * FROM finish();
ROLLBACK;
