-- test/bench/insert_reset.sql
--	Benchmark 2: puts one target table back to the state every run starts
--	from: empty, then the seed history (untimed; through its trigger, if
--	any), vacuumed, analysed and checkpointed.
--
-- psql variable: tbl.

TRUNCATE :tbl RESTART IDENTITY CASCADE;	-- scoring.lead may be referenced
INSERT INTO :tbl (created_at, client_id, shop, channel, category, brand,
				  budget, features, status, closed_at, won_profit)
SELECT created_at, client_id, shop, channel, category, brand,
	   budget, features, status, closed_at, won_profit
  FROM bench.src_seed;
-- synchronous_commit is off: flush the WAL first, else VACUUM may not set
-- hint bits and the visibility map, and index-only scans would visit the heap
CHECKPOINT;
VACUUM ANALYZE :tbl;
CHECKPOINT;
