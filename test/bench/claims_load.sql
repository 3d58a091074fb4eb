-- test/bench/claims_load.sql
--	Data of the claims benchmark (run by claims_bench.sh on a fresh
--	database with the extension):
--	  1,000,000 companies, 90% in the pool, potential spread 0..1,000,000
--	    (5% unknown), 20 industries
--	  50 managers
--	  100,000 claims on pool companies spread over the whole potential
--	    range, 10,000 of them stale at :'now' (expired 1..30 days before)
--	  200,000 rows of claim history, 500,000 touches
--	Loaded with session_replication_role = replica: no triggers and no
--	foreign key checks while loading (the data is consistent by
--	construction), then VACUUM ANALYZE.
--
-- psql -v now='2026-06-01 00:00+00' -f claims_load.sql

\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;

INSERT INTO scoring.manager (manager_id, login, full_name, tier)
SELECT m, 'manager' || m, 'Manager ' || m,
	   (ARRAY['junior', 'middle', 'senior'])[1 + m % 3]
  FROM generate_series(1, 50) AS m;

-- i * 2654435761 mod 2^32 scatters the potential over the ids
INSERT INTO scoring.client (client_id, kind, name, industry, core_industry,
							annual_turnover, pool_eligible, potential)
SELECT i, 'company', 'company ' || i,
	   'industry ' || (i % 20), i % 3 = 0,
	   1000000 + (i::bigint * 7919) % 500000000,
	   i % 10 <> 0,
	   CASE WHEN i % 20 = 7 THEN NULL
			ELSE ((i::bigint * 2654435761) % 4294967296) / 4295 END
  FROM generate_series(1, 1000000) AS i;

-- claims: every 9th company (pool companies only: i % 10 <> 0), 100,000
-- of them; the first 10,000 (by id) stale, the others expire within the
-- next two months
INSERT INTO scoring.claim (client_id, manager_id, claimed_at, last_touch_at, expires_at)
SELECT c, 1 + k % 50, t - interval '2 months', t - interval '2 months', t
  FROM (SELECT c, k,
			   CASE WHEN k < 10000
					THEN :'now'::timestamptz - (1 + k % 30) * interval '1 day'
					ELSE :'now'::timestamptz + (1 + k % 59) * interval '1 day' END AS t
		  FROM (SELECT c, row_number() OVER (ORDER BY c) - 1 AS k
				  FROM generate_series(1, 1000000) AS c
				 WHERE c % 9 = 0 AND c % 10 <> 0) AS e
		 WHERE k < 100000) AS s;

-- earlier owners of 200,000 companies
INSERT INTO scoring.claim_history (client_id, manager_id, claimed_at, released_at, reason)
SELECT 1 + (j::bigint * 4999) % 1000000, 1 + j % 50,
	   :'now'::timestamptz - interval '1 year' - (j % 200) * interval '1 day',
	   :'now'::timestamptz - interval '1 year' - (j % 200) * interval '1 day' + interval '2 months',
	   (ARRAY['expired', 'released', 'transferred'])[1 + j % 3]
  FROM generate_series(1, 200000) AS j;

-- touches on 500,000 (company, day) pairs
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
SELECT 1 + (j::bigint * 7877) % 1000000, 1 + j % 50,
	   :'now'::timestamptz - (j % 365) * interval '1 day',
	   (ARRAY['call_connected', 'call_missed', 'email_out', 'email_in', 'meeting'])[1 + j % 5]
  FROM generate_series(1, 500000) AS j;

RESET session_replication_role;
VACUUM ANALYZE scoring.manager, scoring.client, scoring.claim, scoring.claim_history, scoring.touch;

SELECT count(*) AS companies, count(*) FILTER (WHERE pool_eligible) AS in_pool,
	   count(potential) AS with_potential
  FROM scoring.client;
SELECT count(*) AS claims,
	   count(*) FILTER (WHERE expires_at <= :'now'::timestamptz) AS stale
  FROM scoring.claim;
