-- test/bench/pgbench_reset.sql
--	Benchmark 2, single rows: puts a table back to the state every pgbench
--	run starts from, a copy of scoring.lead as the bulk runs left it
--	(bench.lead_state: the seed and bulk leads, scored), reloaded without
--	firing the table's triggers (it is a restore, not new leads), then
--	vacuumed as autovacuum would have.  So every run sees the same history
--	whatever ran before it.
--
-- psql variable: tbl.

TRUNCATE :tbl CASCADE;
-- no trigger fires for the reload in the replica role (scoring.lead has no
-- ALWAYS trigger on INSERT); ALTER TABLE ... ENABLE TRIGGER USER would also
-- reset the ALWAYS and REPLICA triggers to ORIGIN
SET session_replication_role = replica;
INSERT INTO :tbl SELECT * FROM bench.lead_state;
RESET session_replication_role;
SELECT setval(pg_get_serial_sequence(:'tbl', 'lead_id'),
			  (SELECT max(lead_id) FROM bench.lead_state));
-- truncating scoring.lead deletes the deltas of scoring.lead_totals, one
-- per lead the run before inserted: vacuumed as autovacuum would, or the
-- later runs would append behind all the dead ones
VACUUM scoring.lead_totals;
CHECKPOINT;
VACUUM ANALYZE :tbl;
