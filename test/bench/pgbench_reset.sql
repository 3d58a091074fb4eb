-- test/bench/pgbench_reset.sql
--	Benchmark 2, single rows: puts a table back to the state every pgbench
--	run starts from, a copy of scoring.lead as the bulk runs left it
--	(bench.lead_state: the seed and bulk leads, scored), reloaded with the
--	table's own triggers disabled (it is a restore, not new leads), then
--	vacuumed as autovacuum would have.  So every run sees the same history
--	whatever ran before it.
--
-- psql variable: tbl.

TRUNCATE :tbl CASCADE;
ALTER TABLE :tbl DISABLE TRIGGER USER;
INSERT INTO :tbl SELECT * FROM bench.lead_state;
ALTER TABLE :tbl ENABLE TRIGGER USER;
SELECT setval(pg_get_serial_sequence(:'tbl', 'lead_id'),
			  (SELECT max(lead_id) FROM bench.lead_state));
CHECKPOINT;
VACUUM ANALYZE :tbl;
