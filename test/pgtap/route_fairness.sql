--
-- Routing fairness and exact counters (SPEC §2, §7): 1,000 leads among 5
-- present junior managers balanced by count, then random accepts, closes,
-- hand-made moves, leads sent back to the pool and re-routes by dispatch;
-- manager_load must match the leads throughout.
--
-- Runs in a fresh database with pgtap and scoring; changes nothing (ROLLBACK).
--
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL scoring.now = '2026-11-27 10:00+03';
SELECT plan(22);

-- p_win 0.5 for every lead: expected profit = 0.1 x budget with Fubag
INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.manager (manager_id, tier)
SELECT m, 'junior' FROM generate_series(1, 6) AS m;
INSERT INTO scoring.manager (manager_id, tier) VALUES (7, 'middle');
SELECT scoring.heartbeat(m, false, '2026-11-27 09:59+03') FROM generate_series(1, 5) AS m;
SELECT scoring.heartbeat(7, false, '2026-11-27 09:59+03');
SELECT scoring.set_presence(6, 'offline', '2026-11-27 09:00+03');

-- 1,000 junior leads of varied budgets, in one statement
INSERT INTO scoring.lead (lead_id, brand, budget)
SELECT i, 'Fubag', 1000 + (i * 7919) % 98000 FROM generate_series(1, 1000) AS i;

SELECT is((SELECT count(*) FROM scoring.lead WHERE status = 'assigned'), 1000::bigint,
		  'every lead is assigned');
SELECT is((SELECT count(*) FROM scoring.lead WHERE assignee_id NOT BETWEEN 1 AND 5), 0::bigint,
		  'only the present juniors get leads (not the offline one, not the middle)');
SELECT cmp_ok((SELECT max(day_leads) - min(day_leads) FROM scoring.manager_load
				WHERE manager_id BETWEEN 1 AND 5), '<=', 1,
			  'loads (day_leads) of the 5 present juniors differ by at most 1');
SELECT is((SELECT array_agg(n ORDER BY assignee_id)
			 FROM (SELECT assignee_id, count(*) AS n FROM scoring.lead GROUP BY 1) AS c),
		  '{200,200,200,200,200}'::bigint[],
		  '200 leads each');
SELECT is((SELECT sum(day_leads) FROM scoring.manager_load),
		  (SELECT count(*) FROM scoring.lead WHERE status = 'assigned'),
		  'sum of day_leads = number of assigned leads');
SELECT is((SELECT sum(day_profit) FROM scoring.manager_load),
		  (SELECT sum(routed_expected_profit) FROM scoring.lead),
		  'sum of day_profit = sum of routed expected profit');
SELECT is((SELECT count(*) FROM scoring.lead
			WHERE routed_expected_profit IS DISTINCT FROM expected_profit), 0::bigint,
		  'routed_expected_profit is the expected profit at routing');
SELECT results_eq(
	$$SELECT manager_id, open_leads::bigint FROM scoring.manager_load
	   WHERE open_leads > 0 ORDER BY 1$$,
	$$SELECT assignee_id, count(*) FROM scoring.lead
	   WHERE status IN ('assigned', 'accepted') GROUP BY 1 ORDER BY 1$$,
	'open_leads = assigned leads per manager');
-- ties are broken by a hash, not by the manager id: the first lead of each
-- round of 5 (all loads equal) goes to every manager, about 40 times each
SELECT ok((SELECT min(n) >= 20 AND max(n) <= 60 AND count(*) = 5
			 FROM (SELECT assignee_id, count(*) AS n FROM scoring.lead
					WHERE lead_id % 5 = 1 GROUP BY 1) AS c),
		  'ties between equally loaded managers go to each of them (20..60 of 200)');
SELECT is((SELECT count(*) FROM scoring.assignment_log
			WHERE event = 'assigned' AND jsonb_array_length(candidates) = 6
			  AND candidates @> '[{"manager_id": 6, "excluded": "offline"}]'),
		  1000::bigint,
		  'each decision is logged with the 6 juniors, the offline one with its reason');

--
-- Random work on the leads (seeded, so the run is reproducible)
--
SELECT setseed(0.42);
CREATE TEMP TABLE pick AS
SELECT lead_id, random() AS r, random() AS r2 FROM scoring.lead;

-- accept about 40%
SELECT count(scoring.accept(lead_id)) AS accepted FROM pick WHERE r < 0.4 \gset
-- close about 30% (assigned or accepted) as won, lost or refused
UPDATE scoring.lead d
   SET status = CASE WHEN p.r2 < 0.4 THEN 'won' WHEN p.r2 < 0.8 THEN 'lost' ELSE 'refused' END,
	   closed_at = '2026-11-27 10:05+03'
  FROM pick p WHERE p.lead_id = d.lead_id AND p.r >= 0.25 AND p.r < 0.55;
-- move about 5% by hand to another junior
UPDATE scoring.lead d SET assignee_id = 1 + (d.assignee_id % 5)
  FROM pick p WHERE p.lead_id = d.lead_id AND p.r >= 0.55 AND p.r < 0.6
   AND d.status IN ('assigned', 'accepted');
-- send about 5% back to the pool (routed again, maybe to the same manager)
CREATE TEMP TABLE returned AS
SELECT d.lead_id, d.assignee_id AS before, 0 AS after
  FROM scoring.lead d JOIN pick p USING (lead_id)
 WHERE p.r >= 0.6 AND p.r < 0.65;
UPDATE scoring.lead d SET status = 'new' FROM returned t WHERE t.lead_id = d.lead_id;
UPDATE returned t SET after = d.assignee_id FROM scoring.lead d WHERE d.lead_id = t.lead_id;

SELECT is_empty(
	$$SELECT l.manager_id FROM scoring.manager_load l
	   WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
							   WHERE d.assignee_id = l.manager_id
								 AND d.status IN ('assigned', 'accepted'))$$,
	'open_leads = assigned + accepted per manager after accepts, closes, moves, returns');
SELECT cmp_ok((SELECT count(*) FROM scoring.lead WHERE status IN ('won', 'lost', 'refused')),
			  '>', 200::bigint, 'a good share of leads was closed');

-- everything still 'assigned' lapses at 10:20 (accept_timeout 15 minutes);
-- the managers are still there
SELECT count(scoring.heartbeat(m, false, '2026-11-27 10:19+03')) AS n
  FROM generate_series(1, 5) AS m \gset
SELECT count(*) AS lapsing FROM scoring.lead WHERE status = 'assigned' \gset
SELECT is(scoring.dispatch('2026-11-27 10:20+03'), :lapsing,
		  'dispatch moves every unaccepted lead to someone else');
SELECT is((SELECT count(*) FROM scoring.lead WHERE assignee_id = ANY (lapsed_ids)), 0::bigint,
		  'no lead is back with a manager who let it lapse');
SELECT is((SELECT count(*) FROM scoring.lead
			WHERE status = 'assigned' AND cardinality(lapsed_ids) <> 1), 0::bigint,
		  'each re-routed lead lapsed exactly once');
SELECT is((SELECT count(*) FROM scoring.assignment_log
			WHERE event = 'reassigned' AND at = '2026-11-27 10:20+03'),
		  :lapsing::bigint, 'each re-route is logged as reassigned');
SELECT is_empty(
	$$SELECT l.manager_id FROM scoring.manager_load l
	   WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
							   WHERE d.assignee_id = l.manager_id
								 AND d.status IN ('assigned', 'accepted'))$$,
	'open_leads = assigned + accepted per manager after the re-routes');
SELECT is((SELECT sum(open_leads) FROM scoring.manager_load),
		  (SELECT count(*) FROM scoring.lead WHERE status IN ('assigned', 'accepted')),
		  'the open leads of all managers add up');
-- a manager receives a lead when it is routed or moved to them, not when
-- it comes back to them: 1,000 first routings + hand-made moves + leads
-- back from the pool with someone else + re-routes
SELECT is((SELECT sum(day_leads) FROM scoring.manager_load),
		  1000
		  + (SELECT count(*) FROM pick WHERE r >= 0.55 AND r < 0.6)
		  + (SELECT count(*) FROM returned WHERE after <> before)
		  + :lapsing,
		  'day_leads count every lead received, once');
SELECT cmp_ok((SELECT max(day_leads) - min(day_leads) FROM scoring.manager_load
				WHERE manager_id BETWEEN 1 AND 5), '<=', 2,
			  'after the re-routes the loads are still level');

-- rebuild_loads() recomputes from the leads what the trigger kept: open
-- leads agree already (0 rows to fix when only day counters could differ
-- by the moment), and a damaged counter is repaired
UPDATE scoring.manager_load SET open_leads = open_leads + 7 WHERE manager_id = 1;
SELECT cmp_ok(scoring.rebuild_loads(scoring.clock()), '>=', 1,
			  'rebuild_loads() finds the damaged counter');
SELECT is_empty(
	$$SELECT l.manager_id FROM scoring.manager_load l
	   WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
							   WHERE d.assignee_id = l.manager_id
								 AND d.status IN ('assigned', 'accepted'))$$,
	'after rebuild_loads() open_leads = assigned + accepted per manager');

SELECT * FROM finish();
ROLLBACK;
