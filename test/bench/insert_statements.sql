-- test/bench/insert_statements.sql
--	Benchmark 2, instructions per single-row insert: the text of :n INSERT
--	statements of one lead each into :tbl, drawn like pgbench_insert.sql
--	draws them ('draft' leads), from seed :seed, one statement a line, for
--	postgres --single under callgrind (insert.py).
--
-- psql -At -v tbl=... -v n=... -v seed=... -f insert_statements.sql

-- pgbench's random_exponential(lo, hi, p) for a uniform u in [0, 1)
CREATE FUNCTION pg_temp.rexp(lo int, hi int, p float8, u float8) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
	SELECT lo + floor((hi - lo + 1) * -ln(exp(-p) + (1 - exp(-p)) * (1 - u)) / p)::int
$$;

SELECT setseed(:seed);
SELECT format('INSERT INTO %s (status, client_id, shop, channel, category, brand, budget, features)'
			  ' VALUES (''draft'', %s, %L, %L, %L, %L, %s, %L);',
			  :'tbl',
			  CASE WHEN noclient THEN 'NULL' ELSE client::text END,
			  'shop' || lpad(shop::text, 2, '0'),
			  (ARRAY['email', 'email', 'email', 'email', 'email', 'email', 'email', 'email',
					 'email', 'phone', 'phone', 'phone', 'phone', 'phone', 'form', 'form',
					 'form', 'whatsapp', 'whatsapp', 'chat'])[channel],
			  (ARRAY['welding', 'consumables', 'compressors', 'generators', 'gas_power',
					 'tools', 'pumps', 'safety'])[category],
			  CASE WHEN unknown THEN 'noname1'
				   ELSE 'brand' || lpad((category + 8 * brand)::text, 2, '0') END,
			  round(budget, -2),
			  jsonb_build_object(
				  'utm_source', (ARRAY['yandex', 'google', 'direct', 'email', 'partner',
									   'social', '(none)'])[utm],
				  'items', items, 'urgent', urgent, 'has_attachment', attach,
				  'region', 'region' || lpad(region::text, 2, '0')))
  FROM (SELECT i,
			   random() < 0.1 AS noclient,
			   pg_temp.rexp(1, 14000, 6, random()) AS client,
			   pg_temp.rexp(1, 12, 2, random()) AS shop,
			   1 + floor(random() * 20)::int AS channel,
			   pg_temp.rexp(1, 8, 1.5, random()) AS category,
			   floor(random() * 5)::int AS brand,
			   random() < 0.02 AS unknown,
			   pg_temp.rexp(1000, 3000000, 9, random())::numeric AS budget,
			   1 + floor(random() * 7)::int AS utm,
			   pg_temp.rexp(1, 30, 4, random()) AS items,
			   random() < 0.15 AS urgent,
			   random() < 0.30 AS attach,
			   pg_temp.rexp(1, 85, 3, random()) AS region
		  FROM generate_series(1, :n) AS i) d
 ORDER BY i;
