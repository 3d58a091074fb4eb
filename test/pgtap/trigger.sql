--
-- test/pgtap/trigger.sql
--	The lead scoring trigger (SPEC §1, §7): every flag and priority rule,
--	which updates rescore and which do not, and that a change of brands,
--	bands, refusal rules, settings or the model is seen by the very next
--	lead of the same transaction.
--
--	The models are written by hand so that every p_win is known exactly:
--	model 1: logit = 1 for welding + 0.5 for a company client + 2 for
--	features.colour = "red"; lifetime uplift 1000 for production companies
--	in a core industry.  So p_win is 0.5 for pumps without a client,
--	0.731059 for welding, 0.622459 for pumps from a company, 0.880797 for
--	red pumps.
--
BEGIN;
SELECT plan(94);

SET LOCAL timezone = 'UTC';

-- one line that says everything the trigger computed for a lead
CREATE FUNCTION pg_temp.s(id bigint) RETURNS text LANGUAGE sql AS $$
	SELECT format('p=%s pot=%s ltv=%s exp=%s prio=%s model=%s flags=%s',
				  coalesce(round(p_win::numeric, 6)::text, '-'),
				  coalesce(potential_profit::text, '-'),
				  coalesce(ltv_uplift::text, '-'),
				  coalesce(expected_profit::text, '-'),
				  coalesce(priority::text, '-'),
				  coalesce(model_id::text, '-'),
				  score_flags)
	  FROM scoring.lead WHERE lead_id = id
$$;

-- inserts a draft lead (scored, not routed)
CREATE FUNCTION pg_temp.add(id bigint, cat text, brand text, budget numeric,
							client bigint DEFAULT NULL, feats jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql AS $$
	INSERT INTO scoring.lead (lead_id, client_id, shop, channel, category, brand,
							  budget, features, status)
	VALUES (id, client, 'web', 'email', cat, brand, budget, feats, 'draft')
$$;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.20), ('Zero', 0);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 10000), (2, 5000), (3, 1000), (4, 100);
INSERT INTO scoring.client (client_id, kind, industry, core_industry)
VALUES (1, 'company', 'production', true), (2, 'person', NULL, NULL),
	   (3, 'company', 'trade', false);

--
-- No active model: stored, flagged, priority 2 (a person looks at it)
--
SELECT pg_temp.add(101, 'pumps', 'Fubag', 10000);
SELECT pg_temp.add(102, 'pumps', 'Fubag', 10);
SELECT pg_temp.add(103, 'pumps', 'Nope', NULL);
SELECT is(pg_temp.s(101), 'p=- pot=2000.00 ltv=0.00 exp=- prio=2 model=- flags={no_active_model}',
		  'no model: potential profit computed, no p_win, priority 2');
SELECT is(pg_temp.s(102), 'p=- pot=2.00 ltv=0.00 exp=- prio=2 model=- flags={no_active_model}',
		  'no model: even a tiny lead goes to a person, not to 5');
SELECT is(pg_temp.s(103), 'p=- pot=- ltv=- exp=- prio=2 model=- flags={no_budget,unknown_brand,no_active_model}',
		  'no model, no budget and an unknown brand: every flag');

INSERT INTO scoring.refusal_rule (name, condition) VALUES ('pumps', '{"category": "pumps", "budget": {"lt": 100}}');
SELECT pg_temp.add(104, 'pumps', 'Fubag', 10);
SELECT is(pg_temp.s(104), 'p=- pot=2.00 ltv=0.00 exp=- prio=5 model=- flags={no_active_model,refused:pumps}',
		  'a refusal rule wins over the no-model fallback');
DELETE FROM scoring.refusal_rule;

--
-- The hand-made model
--
INSERT INTO scoring.model (model_id, active, train_since, train_until, n_rows, n_won,
						   intercept, weights, numeric_features, ltv)
VALUES (1, true, '2024-01-01', '2025-01-01', 0, 0, 0,
		'{"category=welding": 1, "client.kind=company": 0.5, "features.colour=red": 2}',
		'{}', '{"company/production/core": 1000}'),
	   (2, false, '2024-01-01', '2025-01-01', 0, 0, -1, '{}', '{}', '{}');

-- budgets and bands
SELECT pg_temp.add(201, 'pumps', 'Fubag', 100000);
SELECT pg_temp.add(202, 'pumps', 'Fubag', 99999.9);
SELECT pg_temp.add(203, 'pumps', 'Fubag', 50000);
SELECT pg_temp.add(204, 'pumps', 'Fubag', 10000);
SELECT pg_temp.add(205, 'pumps', 'Fubag', 1000);
SELECT pg_temp.add(206, 'pumps', 'Fubag', 999.9);
SELECT pg_temp.add(207, 'pumps', 'Fubag', 0);
SELECT pg_temp.add(208, 'welding', 'Fubag', 100000);
SELECT is(pg_temp.s(201), 'p=0.500000 pot=20000.00 ltv=0.00 exp=10000.00 prio=1 model=1 flags={}',
		  'expected profit equal to the band 1 minimum is priority 1');
SELECT is(pg_temp.s(202), 'p=0.500000 pot=19999.98 ltv=0.00 exp=9999.99 prio=2 model=1 flags={}',
		  'a kopeck below band 1 is priority 2');
SELECT is(pg_temp.s(203), 'p=0.500000 pot=10000.00 ltv=0.00 exp=5000.00 prio=2 model=1 flags={}',
		  'band 2 minimum is priority 2');
SELECT is(pg_temp.s(204), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}',
		  'band 3 minimum is priority 3');
SELECT is(pg_temp.s(205), 'p=0.500000 pot=200.00 ltv=0.00 exp=100.00 prio=4 model=1 flags={}',
		  'band 4 minimum is priority 4');
SELECT is(pg_temp.s(206), 'p=0.500000 pot=199.98 ltv=0.00 exp=99.99 prio=5 model=1 flags={}',
		  'below every band is priority 5');
SELECT is(pg_temp.s(207), 'p=0.500000 pot=0.00 ltv=0.00 exp=0.00 prio=5 model=1 flags={}',
		  'a zero budget is a budget: priority 5, no flag');
SELECT is(pg_temp.s(208), 'p=0.731059 pot=20000.00 ltv=0.00 exp=14621.17 prio=1 model=1 flags={}',
		  'expected profit = round(p_win x potential, 2)');

-- budgets that cannot be used: priority 2 with the reason
SELECT pg_temp.add(211, 'pumps', 'Fubag', NULL);
SELECT pg_temp.add(212, 'pumps', 'Fubag', 'NaN');
SELECT pg_temp.add(213, 'pumps', 'Fubag', 'Infinity');
SELECT pg_temp.add(214, 'pumps', 'Fubag', '-Infinity');
SELECT pg_temp.add(215, 'pumps', 'Fubag', -1);
SELECT pg_temp.add(216, 'pumps', 'Fubag', 1000000000000);
SELECT pg_temp.add(217, 'pumps', 'Fubag', 1000000000000.01);
SELECT pg_temp.add(218, 'pumps', 'Fubag', 1e300);
SELECT pg_temp.add(219, 'pumps', 'Fubag', 1e400);
SELECT pg_temp.add(220, 'pumps', 'Fubag', -1e400);
SELECT is(pg_temp.s(211), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={no_budget}', 'no budget');
SELECT is(pg_temp.s(212), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={invalid_budget}', 'NaN budget');
SELECT is(pg_temp.s(213), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={invalid_budget}', 'Infinity budget');
SELECT is(pg_temp.s(214), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={invalid_budget}', '-Infinity budget');
SELECT is(pg_temp.s(215), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={negative_budget}', 'negative budget');
SELECT is(pg_temp.s(216), 'p=0.500000 pot=200000000000.00 ltv=0.00 exp=100000000000.00 prio=1 model=1 flags={}',
		  'a budget of exactly max_budget (1e12) is scored');
SELECT is(pg_temp.s(217), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={implausible_budget}',
		  'a kopeck over max_budget is implausible');
SELECT is(pg_temp.s(218), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={implausible_budget}',
		  '1e300 is implausible');
-- a finite numeric beyond the range of float8 is not NaN/Infinity
SELECT is(pg_temp.s(219), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={implausible_budget}',
		  '1e400 is a finite budget over max_budget: implausible_budget, not invalid_budget');
-- the same for a huge negative budget
SELECT is(pg_temp.s(220), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={negative_budget}',
		  '-1e400 is a negative budget, not an invalid one');

-- brands: unknown ones use default_margin 0.15; odd data is never priority 5
SELECT pg_temp.add(231, 'pumps', 'Nope', 100000);
SELECT pg_temp.add(232, 'pumps', NULL, 100000);
SELECT pg_temp.add(233, 'pumps', 'Nope', 100);
SELECT pg_temp.add(234, 'pumps', NULL, 100);
SELECT pg_temp.add(235, 'pumps', 'fubag', 100000);
SELECT pg_temp.add(236, 'pumps', 'Zero', 100000);
SELECT is(pg_temp.s(231), 'p=0.500000 pot=15000.00 ltv=0.00 exp=7500.00 prio=2 model=1 flags={unknown_brand}',
		  'unknown brand: default margin 0.15, band priority');
SELECT is(pg_temp.s(232), 'p=0.500000 pot=15000.00 ltv=0.00 exp=7500.00 prio=2 model=1 flags={no_brand}',
		  'no brand: default margin 0.15');
SELECT is(pg_temp.s(233), 'p=0.500000 pot=15.00 ltv=0.00 exp=7.50 prio=4 model=1 flags={unknown_brand}',
		  'unknown brand below every band: 4, not 5');
SELECT is(pg_temp.s(234), 'p=0.500000 pot=15.00 ltv=0.00 exp=7.50 prio=4 model=1 flags={no_brand}',
		  'no brand below every band: 4, not 5');
SELECT is(pg_temp.s(235), 'p=0.500000 pot=15000.00 ltv=0.00 exp=7500.00 prio=2 model=1 flags={unknown_brand}',
		  'brands are case sensitive');
SELECT is(pg_temp.s(236), 'p=0.500000 pot=0.00 ltv=0.00 exp=0.00 prio=5 model=1 flags={}',
		  'a known brand with margin 0 is not odd: priority 5');

-- the client: company weight and lifetime uplift of its segment
SELECT pg_temp.add(241, 'pumps', 'Fubag', 10000, 1);
SELECT pg_temp.add(242, 'pumps', 'Fubag', 10000, 2);
SELECT pg_temp.add(243, 'pumps', 'Fubag', 10000, 3);
SELECT pg_temp.add(244, 'pumps', 'Fubag', NULL, 1);
SELECT is(pg_temp.s(241), 'p=0.622459 pot=3000.00 ltv=1000.00 exp=1867.38 prio=3 model=1 flags={}',
		  'a production company in a core industry: company weight and the uplift 1000');
SELECT is(pg_temp.s(242), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}',
		  'a person: no company weight, no uplift');
SELECT is(pg_temp.s(243), 'p=0.622459 pot=2000.00 ltv=0.00 exp=1244.92 prio=3 model=1 flags={}',
		  'a trading company: company weight, no uplift');
SELECT is(pg_temp.s(244), 'p=0.622459 pot=- ltv=- exp=- prio=2 model=1 flags={no_budget}',
		  'no budget: no potential profit, no uplift either');

-- a client scoring.client does not know (yet): the lead is kept, scored
-- without the client's attributes, flagged, and never left to automation
SELECT pg_temp.add(245, 'pumps', 'Fubag', 10000, 99);
SELECT pg_temp.add(246, 'pumps', 'Fubag', 10, 99);
SELECT is(pg_temp.s(245), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={unknown_client}',
		  'an unknown client: stored and flagged, scored like a lead without a client');
SELECT is(pg_temp.s(246), 'p=0.500000 pot=2.00 ltv=0.00 exp=1.00 prio=4 model=1 flags={unknown_client}',
		  'an unknown client: odd data, so priority 4 where the band says 5');
INSERT INTO scoring.client (client_id, kind, industry, core_industry)
VALUES (99, 'company', 'production', true);
UPDATE scoring.lead SET budget = budget WHERE lead_id = 245;
SELECT is(pg_temp.s(245), 'p=0.622459 pot=3000.00 ltv=1000.00 exp=1867.38 prio=3 model=1 flags={}',
		  'once the client is known, rescoring the lead uses it and drops the flag');
DELETE FROM scoring.client WHERE client_id = 99;
SELECT is((SELECT count(*) FROM scoring.lead WHERE client_id = 99), 2::bigint,
		  'deleting a client keeps its leads');

-- free features
SELECT pg_temp.add(251, 'pumps', 'Fubag', 10000, NULL, '{"colour": "red"}');
SELECT pg_temp.add(252, 'pumps', 'Fubag', 10000, NULL, '{"colour": ["red"]}');
SELECT pg_temp.add(253, 'pumps', 'Fubag', 10000, NULL, '["colour", "red"]');
SELECT is(pg_temp.s(251), 'p=0.880797 pot=2000.00 ltv=0.00 exp=1761.59 prio=3 model=1 flags={}',
		  'a free feature with a weight');
SELECT is(pg_temp.s(252), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}',
		  'an array value carries nothing');
SELECT is(pg_temp.s(253), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}',
		  'features that are not an object carry nothing');

-- no priority bands: priority 2, flagged
DELETE FROM scoring.priority_band;
SELECT pg_temp.add(261, 'pumps', 'Fubag', 100000);
SELECT pg_temp.add(262, 'pumps', 'Nope', 100000);
SELECT is(pg_temp.s(261), 'p=0.500000 pot=20000.00 ltv=0.00 exp=10000.00 prio=2 model=1 flags={no_priority_bands}',
		  'no bands: expected profit computed, priority 2, flagged');
SELECT is(pg_temp.s(262), 'p=0.500000 pot=15000.00 ltv=0.00 exp=7500.00 prio=2 model=1 flags={unknown_brand,no_priority_bands}',
		  'no bands and an unknown brand: both flags');
-- only some bands
INSERT INTO scoring.priority_band (priority, min_expected_profit) VALUES (3, 1000);
SELECT pg_temp.add(263, 'pumps', 'Fubag', 100000);
SELECT pg_temp.add(264, 'pumps', 'Fubag', 100);
SELECT is(pg_temp.s(263), 'p=0.500000 pot=20000.00 ltv=0.00 exp=10000.00 prio=3 model=1 flags={}',
		  'with band 3 only, a fat lead is 3');
SELECT is(pg_temp.s(264), 'p=0.500000 pot=20.00 ltv=0.00 exp=10.00 prio=5 model=1 flags={}',
		  'with band 3 only, below it is 5');
DELETE FROM scoring.priority_band;
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 10000), (2, 5000), (3, 1000), (4, 100);

--
-- Refusal rules: priority 5 and refused:NAME, first matching rule by name
--
INSERT INTO scoring.refusal_rule (name, condition, active)
VALUES ('b_pumps', '{"category": "pumps"}', true),
	   ('a_small', '{"budget": {"lt": 1000}}', true),
	   ('c_cheap_win', '{"p_win": {"lt": 0.6}, "expected_profit": {"lt": 300}}', true),
	   ('0_off', '{}', false),
	   ('d_person', '{"client.kind": "person", "features.urgent": true}', true);
SELECT pg_temp.add(271, 'pumps', 'Fubag', 1000000);
SELECT pg_temp.add(272, 'pumps', 'Fubag', 10);
SELECT pg_temp.add(273, 'welding', 'Fubag', 1500);
SELECT pg_temp.add(274, 'welding', 'Fubag', 1000000, 2, '{"urgent": true}');
SELECT pg_temp.add(275, 'welding', 'Fubag', 1000000, 2, '{"urgent": "true"}');
SELECT pg_temp.add(276, 'pumps', 'Nope', NULL);
SELECT pg_temp.add(277, 'welding', 'Nope', 1200);
SELECT is(pg_temp.s(271), 'p=0.500000 pot=200000.00 ltv=0.00 exp=100000.00 prio=5 model=1 flags={refused:b_pumps}',
		  'a refused lead is 5 whatever its profit');
SELECT is(pg_temp.s(272), 'p=0.500000 pot=2.00 ltv=0.00 exp=1.00 prio=5 model=1 flags={refused:a_small}',
		  'two rules match: the first by name wins; an inactive rule matching everything does not');
SELECT is(pg_temp.s(273), 'p=0.731059 pot=300.00 ltv=0.00 exp=219.32 prio=4 model=1 flags={}',
		  'a rule on p_win and expected_profit: both must hold');
SELECT is(pg_temp.s(274), 'p=0.731059 pot=200000.00 ltv=0.00 exp=146211.72 prio=5 model=1 flags={refused:d_person}',
		  'a rule on the client and a free feature');
SELECT is(pg_temp.s(275), 'p=0.731059 pot=200000.00 ltv=0.00 exp=146211.72 prio=1 model=1 flags={}',
		  'a string "true" is not the boolean true');
SELECT is(pg_temp.s(276), 'p=0.500000 pot=- ltv=- exp=- prio=5 model=1 flags={no_budget,unknown_brand,refused:b_pumps}',
		  'a refusal wins over the no-budget fallback');
UPDATE scoring.refusal_rule SET condition = '{"p_win": {"gt": 0.7}, "expected_profit": {"lt": 200}}'
 WHERE name = 'c_cheap_win';
SELECT pg_temp.add(278, 'welding', 'Nope', 1200);
SELECT is(pg_temp.s(277), 'p=0.731059 pot=180.00 ltv=0.00 exp=131.59 prio=4 model=1 flags={unknown_brand}',
		  'before the rule change: priority 4');
SELECT is(pg_temp.s(278), 'p=0.731059 pot=180.00 ltv=0.00 exp=131.59 prio=5 model=1 flags={unknown_brand,refused:c_cheap_win}',
		  'a changed rule refuses the next lead, over the odd-data fallback');
DELETE FROM scoring.refusal_rule;

--
-- Updates: the scoring inputs rescore, everything else does not
--
SELECT pg_temp.add(301, 'pumps', 'Fubag', 10000);
UPDATE scoring.lead SET budget = 100000 WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.500000 pot=20000.00 ltv=0.00 exp=10000.00 prio=1 model=1 flags={}',
		  'a new budget is scored');
UPDATE scoring.lead SET brand = 'Nope' WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.500000 pot=15000.00 ltv=0.00 exp=7500.00 prio=2 model=1 flags={unknown_brand}',
		  'a new brand is scored');
UPDATE scoring.lead SET category = 'welding', brand = 'Fubag' WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.731059 pot=20000.00 ltv=0.00 exp=14621.17 prio=1 model=1 flags={}',
		  'a new category is scored and the flag goes');
UPDATE scoring.lead SET category = 'pumps', features = '{"colour": "red"}' WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.880797 pot=20000.00 ltv=0.00 exp=17615.94 prio=1 model=1 flags={}',
		  'new features are scored');
UPDATE scoring.lead SET features = '{}', client_id = 1 WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.622459 pot=21000.00 ltv=1000.00 exp=13071.65 prio=1 model=1 flags={}',
		  'a new client is scored, with its uplift');
UPDATE scoring.lead SET budget = NULL WHERE lead_id = 301;
SELECT is(pg_temp.s(301), 'p=0.622459 pot=- ltv=- exp=- prio=2 model=1 flags={no_budget}',
		  'removing the budget flags the lead and clears the profit');

-- switch to model 2 (logit -1 for everything): only inputs rescore
UPDATE scoring.model SET active = false WHERE model_id = 1;
UPDATE scoring.model SET active = true WHERE model_id = 2;
INSERT INTO scoring.lead (lead_id, shop, channel, category, brand, budget, status)
SELECT i, 'web', 'email', 'pumps', 'Fubag', 10000, 'draft'
  FROM generate_series(311, 320) AS i;
-- those were scored with model 2; put them back on model 1 by hand
UPDATE scoring.lead SET p_win = 0.5, model_id = 1, expected_profit = 1000.00, priority = 3
 WHERE lead_id BETWEEN 311 AND 320;
UPDATE scoring.lead SET status = 'won', won_profit = 2000, closed_at = now() WHERE lead_id = 311;
UPDATE scoring.lead SET status = 'lost', refusal_reason = 'price' WHERE lead_id = 312;
UPDATE scoring.lead SET assignee_id = 7, assigned_at = now(), routed_expected_profit = 1 WHERE lead_id = 313;
UPDATE scoring.lead SET priority = 1 WHERE lead_id = 314;
SELECT is((SELECT array_agg(model_id || ':' || p_win ORDER BY lead_id) FROM scoring.lead
			WHERE lead_id BETWEEN 311 AND 314),
		  ARRAY['1:0.5', '1:0.5', '1:0.5', '1:0.5'],
		  'status, outcome, routing and computed columns do not rescore');
SELECT is((SELECT priority FROM scoring.lead WHERE lead_id = 314), 1::smallint,
		  'a computed column set by hand stays as set');
UPDATE scoring.lead SET created_at = created_at WHERE lead_id = 315;
UPDATE scoring.lead SET client_id = NULL WHERE lead_id = 316;
UPDATE scoring.lead SET shop = 'other' WHERE lead_id = 317;
UPDATE scoring.lead SET channel = channel WHERE lead_id = 318;
UPDATE scoring.lead SET category = category WHERE lead_id = 319;
UPDATE scoring.lead SET brand = brand, budget = budget, features = features WHERE lead_id = 320;
SELECT is((SELECT array_agg(model_id || ':' || round(p_win::numeric, 6) ORDER BY lead_id)
			 FROM scoring.lead WHERE lead_id BETWEEN 315 AND 320),
		  ARRAY['2:0.268941', '2:0.268941', '2:0.268941', '2:0.268941', '2:0.268941', '2:0.268941'],
		  'naming any scoring input in an UPDATE rescores, even with the same value');
SELECT is(scoring.rescore(), (SELECT count(*) FROM scoring.lead
							   WHERE status NOT IN ('won', 'lost', 'refused')),
		  'rescore() counts the open leads');
SELECT is((SELECT array_agg(lead_id ORDER BY lead_id) FROM scoring.lead WHERE model_id = 1),
		  ARRAY[311, 312]::bigint[], 'rescore() leaves the closed leads alone (311 won, 312 lost)');
SELECT is(pg_temp.s(311), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}',
		  'the won lead keeps its old score');
SELECT is(scoring.rescore(false), (SELECT count(*) FROM scoring.lead),
		  'rescore(false) counts every lead');
SELECT is((SELECT count(*) FROM scoring.lead WHERE model_id IS DISTINCT FROM 2), 0::bigint,
		  'after rescore(false) every lead has model 2');

UPDATE scoring.model SET active = false WHERE model_id = 2;
UPDATE scoring.model SET active = true WHERE model_id = 1;

--
-- The cache: a change is seen by the next lead of the same transaction
--
SELECT pg_temp.add(401, 'pumps', 'Fubag', 10000);
UPDATE scoring.brand SET margin = 0.5 WHERE brand = 'Fubag';
SELECT pg_temp.add(402, 'pumps', 'Fubag', 10000);
INSERT INTO scoring.brand (brand, margin) VALUES ('Nope', 0.4);
SELECT pg_temp.add(403, 'pumps', 'Nope', 10000);
DELETE FROM scoring.brand WHERE brand = 'Nope';
SELECT pg_temp.add(404, 'pumps', 'Nope', 10000);
SELECT is(pg_temp.s(401), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}', 'cache: before the margin change');
SELECT is(pg_temp.s(402), 'p=0.500000 pot=5000.00 ltv=0.00 exp=2500.00 prio=3 model=1 flags={}', 'cache: a changed margin');
SELECT is(pg_temp.s(403), 'p=0.500000 pot=4000.00 ltv=0.00 exp=2000.00 prio=3 model=1 flags={}', 'cache: a new brand is known');
SELECT is(pg_temp.s(404), 'p=0.500000 pot=1500.00 ltv=0.00 exp=750.00 prio=4 model=1 flags={unknown_brand}', 'cache: a deleted brand is unknown again');
TRUNCATE scoring.brand;
SELECT pg_temp.add(405, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(405), 'p=0.500000 pot=1500.00 ltv=0.00 exp=750.00 prio=4 model=1 flags={unknown_brand}', 'cache: TRUNCATE of brands');
INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.20);

-- a change rolled back to a savepoint is forgotten
SAVEPOINT s1;
UPDATE scoring.brand SET margin = 0.9 WHERE brand = 'Fubag';
SELECT pg_temp.add(406, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(406), 'p=0.500000 pot=9000.00 ltv=0.00 exp=4500.00 prio=3 model=1 flags={}', 'cache: margin 0.9 inside the savepoint');
ROLLBACK TO SAVEPOINT s1;
SELECT pg_temp.add(406, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(406), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=3 model=1 flags={}', 'cache: margin 0.2 again after ROLLBACK TO SAVEPOINT');

-- bands
UPDATE scoring.priority_band SET min_expected_profit = 900 WHERE priority = 2;
SELECT pg_temp.add(411, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(411), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=2 model=1 flags={}', 'cache: a changed band');
TRUNCATE scoring.priority_band;
SELECT pg_temp.add(412, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(412), 'p=0.500000 pot=2000.00 ltv=0.00 exp=1000.00 prio=2 model=1 flags={no_priority_bands}', 'cache: bands truncated');
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 10000), (2, 5000), (3, 1000), (4, 100);

-- rules
INSERT INTO scoring.refusal_rule (name, condition) VALUES ('r', '{"features.spam": true}');
SELECT pg_temp.add(421, 'pumps', 'Fubag', 10000, NULL, '{"spam": true}');
UPDATE scoring.refusal_rule SET active = false;
SELECT pg_temp.add(422, 'pumps', 'Fubag', 10000, NULL, '{"spam": true}');
UPDATE scoring.refusal_rule SET active = true;
SELECT pg_temp.add(423, 'pumps', 'Fubag', 10000, NULL, '{"spam": true}');
DELETE FROM scoring.refusal_rule;
SELECT pg_temp.add(424, 'pumps', 'Fubag', 10000, NULL, '{"spam": true}');
SELECT is(array_agg(priority || ' ' || score_flags::text ORDER BY lead_id),
		  ARRAY['5 {refused:r}', '3 {}', '5 {refused:r}', '3 {}'],
		  'cache: rule inserted, deactivated, activated, deleted')
  FROM scoring.lead WHERE lead_id BETWEEN 421 AND 424;

-- settings
INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '0.3');
SELECT pg_temp.add(431, 'pumps', 'Nope', 10000);
UPDATE scoring.setting SET value = '0.4' WHERE name = 'default_margin';
SELECT pg_temp.add(432, 'pumps', 'Nope', 10000);
DELETE FROM scoring.setting;
SELECT pg_temp.add(433, 'pumps', 'Nope', 10000);
INSERT INTO scoring.setting (name, value) VALUES ('max_budget', '5000');
SELECT pg_temp.add(434, 'pumps', 'Fubag', 5000);
SELECT pg_temp.add(435, 'pumps', 'Fubag', 5000.01);
TRUNCATE scoring.setting;
SELECT pg_temp.add(436, 'pumps', 'Fubag', 5000.01);
SELECT is(array_agg(potential_profit::text || ' ' || score_flags::text ORDER BY lead_id),
		  ARRAY['3000.00 {unknown_brand}', '4000.00 {unknown_brand}', '1500.00 {unknown_brand}',
				'1000.00 {}', NULL, '1000.00 {}'],
		  'cache: default_margin set, changed, removed')
  FROM scoring.lead WHERE lead_id BETWEEN 431 AND 436;
SELECT is(pg_temp.s(435), 'p=0.500000 pot=- ltv=- exp=- prio=2 model=1 flags={implausible_budget}',
		  'cache: max_budget set to 5000');
SELECT is((SELECT value FROM scoring.settings WHERE name = 'default_margin'), '0.15'::jsonb,
		  'settings view: the default when nothing is set');
INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '0.25');
SELECT is((SELECT value || default_value FROM scoring.settings WHERE name = 'default_margin'),
		  '[0.25, 0.15]'::jsonb, 'settings view: the user value over the default');
DELETE FROM scoring.setting;

-- the model: edited, deactivated, another activated, deleted
UPDATE scoring.model SET weights = weights || '{"category=pumps": -1}' WHERE model_id = 1;
SELECT pg_temp.add(441, 'pumps', 'Fubag', 10000);
UPDATE scoring.model SET active = false WHERE model_id = 1;
SELECT pg_temp.add(442, 'pumps', 'Fubag', 10000);
UPDATE scoring.model SET active = true WHERE model_id = 2;
SELECT pg_temp.add(443, 'pumps', 'Fubag', 10000);
DELETE FROM scoring.model WHERE model_id = 2;
SELECT pg_temp.add(444, 'pumps', 'Fubag', 10000);
UPDATE scoring.model SET active = true WHERE model_id = 1;
SELECT pg_temp.add(445, 'pumps', 'Fubag', 10000);
SELECT is(pg_temp.s(441), 'p=0.268941 pot=2000.00 ltv=0.00 exp=537.88 prio=4 model=1 flags={}', 'cache: an edited coefficient');
SELECT is(pg_temp.s(442), 'p=- pot=2000.00 ltv=0.00 exp=- prio=2 model=- flags={no_active_model}', 'cache: the model deactivated');
SELECT is(pg_temp.s(443), 'p=0.268941 pot=2000.00 ltv=0.00 exp=537.88 prio=4 model=2 flags={}', 'cache: another model activated');
SELECT is(pg_temp.s(444), 'p=- pot=2000.00 ltv=0.00 exp=- prio=2 model=- flags={no_active_model}', 'cache: the active model deleted');
SELECT is(pg_temp.s(445), 'p=0.268941 pot=2000.00 ltv=0.00 exp=537.88 prio=4 model=1 flags={}', 'cache: model 1 active again');

-- history import: closed leads are scored too
INSERT INTO scoring.lead (lead_id, created_at, category, brand, budget, status, closed_at, won_profit)
VALUES (451, '2023-05-01', 'welding', 'Fubag', 10000, 'won', '2023-05-10', 2000);
SELECT is(pg_temp.s(451), 'p=0.731059 pot=2000.00 ltv=0.00 exp=1462.12 prio=3 model=1 flags={}',
		  'a lead imported as won is scored like any other');

--
-- Settings that would break scoring are refused when stored, and a lead
-- insert never fails because of a setting
--
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '"abc"')$$,
				 '22023', NULL, 'a non-numeric default_margin is refused');
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('max_budget', 'null')$$,
				 '22023', NULL, 'a null max_budget is refused');
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '-0.5')$$,
				 '22023', NULL, 'a negative default_margin is refused like a negative brand margin');
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '1.5')$$,
				 '22023', NULL, 'a default_margin over 1 is refused like a brand margin over 1');
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('max_budget', '-1')$$,
				 '22023', NULL, 'a negative max_budget is refused');
SELECT throws_ok($$INSERT INTO scoring.setting (name, value) VALUES ('default_margn', '0.2')$$,
				 '22023', NULL, 'a misspelt setting is refused');
INSERT INTO scoring.setting (name, value) VALUES ('default_margin', '0.5');
SELECT throws_ok($$UPDATE scoring.setting SET value = '"x"' WHERE name = 'default_margin'$$,
				 '22023', NULL, 'a bad update of a setting is refused');
SELECT pg_temp.add(461, 'pumps', 'Nope', 10000);
SELECT is(pg_temp.s(461), 'p=0.268941 pot=5000.00 ltv=0.00 exp=1344.71 prio=3 model=1 flags={unknown_brand}',
		  'the setting kept its good value');
SELECT lives_ok($$
	DO $do$
	BEGIN
		BEGIN
			INSERT INTO scoring.setting (name, value) VALUES ('max_budget', '"lots"');
		EXCEPTION WHEN others THEN NULL;	-- refusing the setting is what we want
		END;
		INSERT INTO scoring.lead (lead_id, category, brand, budget, status)
		VALUES (462, 'pumps', 'Fubag', 10000, 'draft');
	END
	$do$ $$, 'after a bad setting a lead is still stored');
DELETE FROM scoring.setting;

SELECT * FROM finish();
ROLLBACK;
