-- test/bench/insert_setup.sql
--	Benchmark 2 (insert cost): the configuration, the source leads, a model
--	and the three target tables.
--
-- psql variables: nclients, nseed (history loaded before each run, and
-- trained on), nleads (the leads each run inserts).
--
--	bench.src_seed, bench.src_main	the leads, generated once (gen.sql), in
--									created_at order
--	scoring.lead					(a) the extension's table, C trigger
--	bench.twin_plain				(b) CREATE TABLE (LIKE scoring.lead
--									INCLUDING ALL): differs from
--									scoring.lead only by the triggers
--	bench.twin_plpgsql				(c) like (b) with the PL/pgSQL scoring
--									trigger of plpgsql_trigger.sql

SELECT bench.gen_config(:nclients);

CREATE TABLE bench.src_seed AS
SELECT * FROM bench.gen_leads(:nseed + :nleads, :nclients, '2024-01-01+00',
							  '1 year', 5, 0.5);
CREATE TABLE bench.src_main AS
SELECT * FROM bench.src_seed WHERE n_id > :nseed ORDER BY n_id;
DELETE FROM bench.src_seed WHERE n_id > :nseed;
CHECKPOINT;	-- synchronous_commit is off: lets VACUUM set the visibility map
VACUUM ANALYZE bench.src_seed;
VACUUM ANALYZE bench.src_main;

-- the model every scored insert uses: trained on the seed history, with
-- the priority bands from it (no refusal rules are active)
INSERT INTO scoring.lead (created_at, client_id, shop, channel, category, brand,
						  budget, features, status, closed_at, won_profit)
SELECT created_at, client_id, shop, channel, category, brand,
	   budget, features, status, closed_at, won_profit
  FROM bench.src_seed;
CHECKPOINT;
VACUUM ANALYZE scoring.lead;
SELECT scoring.train('2024-01-01+00', '2025-01-01+00') AS model_id \gset
SELECT n_rows, n_won, jsonb_array_length(weights_keys) AS coefficients,
	   (metrics->'holdout'->>'auc')::numeric(5,4) AS holdout_auc
  FROM scoring.model, LATERAL (SELECT jsonb_agg(k) AS weights_keys
								 FROM jsonb_object_keys(weights) k) w
 WHERE model_id = :model_id;

CREATE TABLE bench.twin_plain (LIKE scoring.lead INCLUDING ALL);

CREATE TABLE bench.twin_plpgsql (LIKE scoring.lead INCLUDING ALL);

\ir plpgsql_trigger.sql

CREATE TRIGGER lead_score
	BEFORE INSERT OR UPDATE OF client_id, created_at, shop, channel, category,
		brand, budget, features
	ON bench.twin_plpgsql
	FOR EACH ROW EXECUTE FUNCTION bench.lead_score_plpgsql();

-- Eight managers (3 junior, 3 middle, 2 senior), on a call, on a shift
-- covering the whole UTC day: the single-row benchmark's 'new' leads are
-- routed to them.  (Between 23:50 and 24:00 UTC the shift guard keeps
-- them from new leads, which then wait in the queue.)
INSERT INTO scoring.manager (manager_id, login, full_name, tier, shift_start,
							 shift_end, time_zone)
SELECT i, 'manager' || i, 'Manager ' || i,
	   (ARRAY['junior', 'junior', 'junior', 'middle', 'middle', 'middle',
			  'senior', 'senior'])[i], '00:00', '23:59:59', 'UTC'
  FROM generate_series(1, 8) i;
INSERT INTO scoring.presence (manager_id, on_call, last_activity, status)
SELECT i, true, now(), 'online' FROM generate_series(1, 8) i;
