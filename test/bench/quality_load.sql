-- test/bench/quality_load.sql
--	Benchmark 1 (quality): the training 70% become closed leads in
--	scoring.lead.  They go through the scoring trigger (which scores
--	them with whatever model is active, or flags "no_active_model");
--	train() reads only their inputs and status.  Run once per split (quality.py first empties
--	bench.train_in and bench.test_lead and copies the split in).

TRUNCATE scoring.lead RESTART IDENTITY CASCADE;	-- other tables may reference leads
INSERT INTO scoring.lead (created_at, channel, features, status)
SELECT created_at, channel, features, status FROM bench.train_in ORDER BY row_id;

CHECKPOINT;	-- flushes the WAL, so that VACUUM can set the visibility map
VACUUM ANALYZE scoring.lead;
VACUUM ANALYZE bench.test_lead;
