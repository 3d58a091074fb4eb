-- test/bench/train_setup.sql
--	Benchmark 3 (train cost): nleads closed leads over 2024 with 32
--	features: 12 fixed (shop, channel, category, brand, budget; the
--	client's kind, industry, core_industry, okved2, annual_turnover;
--	history leads and win rate) and 20 free ones in features (8 strings,
--	8 numbers, some often absent, 4 booleans).  See gen.sql.
--
-- The leads go in with the scoring trigger disabled (ALTER TABLE ...
-- DISABLE TRIGGER lead_score, enabled again after): this is a training
-- benchmark, and train() reads only the leads' inputs and outcomes.
--
-- psql variables: nleads, nclients.

SELECT bench.gen_config(:nclients);

ALTER TABLE scoring.lead DISABLE TRIGGER lead_score;
INSERT INTO scoring.lead (created_at, client_id, shop, channel, category, brand,
						  budget, features, status, closed_at, won_profit)
SELECT created_at, client_id, shop, channel, category, brand,
	   budget, features, status, closed_at, won_profit
  FROM bench.gen_leads(:nleads, :nclients, '2024-01-01+00', '1 year', 20, 0.75);
ALTER TABLE scoring.lead ENABLE TRIGGER lead_score;
-- synchronous_commit is off: flush the WAL first, else VACUUM may not set
-- hint bits and the visibility map (then every history lookup visits the heap)
CHECKPOINT;
VACUUM ANALYZE scoring.lead;
CHECKPOINT;
