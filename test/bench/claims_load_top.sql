-- test/bench/claims_load_top.sql
--	The second scenario of the claims benchmark: managers pick the best
--	companies first (free_companies is ordered by potential), so the
--	100,000 claims sit on the 100,000 pool companies of highest potential
--	and the first page of free_companies has to skip all of them.  10,000
--	of the claims are stale at :'now', as in claims_load.sql.
--
-- psql -v now='2026-06-01 00:00+00' -f claims_load_top.sql

\set ON_ERROR_STOP on
SET session_replication_role = replica;
TRUNCATE scoring.claim;
INSERT INTO scoring.claim (client_id, manager_id, claimed_at, last_touch_at, expires_at)
SELECT client_id, 1 + k % 50, t - interval '2 months', t - interval '2 months', t
  FROM (SELECT client_id, k,
			   CASE WHEN k % 10 = 0
					THEN :'now'::timestamptz - (1 + k % 30) * interval '1 day'
					ELSE :'now'::timestamptz + (1 + k % 59) * interval '1 day' END AS t
		  FROM (SELECT client_id, row_number() OVER (ORDER BY potential DESC NULLS LAST, client_id) - 1 AS k
				  FROM scoring.client WHERE pool_eligible
				 ORDER BY potential DESC NULLS LAST, client_id
				 LIMIT 100000) AS top) AS s;
RESET session_replication_role;
VACUUM ANALYZE scoring.claim;
SELECT count(*) AS claims,
	   count(*) FILTER (WHERE expires_at <= :'now'::timestamptz) AS stale
  FROM scoring.claim;
