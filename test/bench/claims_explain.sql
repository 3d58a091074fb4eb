-- test/bench/claims_explain.sql
--	EXPLAIN ANALYZE of the two benchmarked statements: the first page of
--	free_companies first (the release, even rolled back, clears bits of
--	the visibility map of claim), then the release.  The release runs
--	inside a function, so auto_explain shows the plan of the statement in
--	it (log_nested_statements), sent to the client as a NOTICE; it is
--	rolled back.
--
-- psql -v now='2026-06-01 00:00+00' -f claims_explain.sql

\set ON_ERROR_STOP on
\pset pager off
LOAD 'auto_explain';
SET auto_explain.log_min_duration = -1;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;

\echo '=== SELECT * FROM scoring.free_companies LIMIT 50'
EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM scoring.free_companies LIMIT 50;

\echo '=== release_stale_claims(now): the statement inside the function'
SET auto_explain.log_min_duration = 0;
BEGIN;
SELECT scoring.release_stale_claims(:'now') AS released;
ROLLBACK;
