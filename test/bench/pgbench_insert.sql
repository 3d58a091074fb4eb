-- test/bench/pgbench_insert.sql
--	Benchmark 2, single-row inserts: the pgbench script.  One lead (created_at
--	now(), status 'draft' or 'new' by the variable st) with random attributes
--	shaped like gen.sql's: a skewed client (1 in 10 without one), 12 shops,
--	channels dominated by e-mail, 8 categories, the category's brands (with
--	some unknown ones), a heavy-tailed budget, five free features.
--
-- pgbench -n -f pgbench_insert.sql -D tbl=scoring.lead -D st=1	('draft': scored)
--	 ... -D st=2	('new': scored and routed; the twins have no trigger)

\set noclient random(1, 10)
\set client random_exponential(1, 14000, 6)
\set shop random_exponential(1, 12, 2)
\set channel random(1, 20)
\set category random_exponential(1, 8, 1.5)
\set brand random(0, 4)
\set unknown random(1, 50)
\set budget random_exponential(1000, 3000000, 9)
\set utm random(1, 7)
\set items random_exponential(1, 30, 4)
\set urgent random(1, 100)
\set attach random(1, 100)
\set region random_exponential(1, 85, 3)
INSERT INTO :tbl (status, client_id, shop, channel, category, brand, budget, features)
VALUES ((ARRAY['draft', 'new'])[:st],
		CASE WHEN :noclient = 1 THEN NULL ELSE :client END,
		'shop' || lpad(:shop::text, 2, '0'),
		(ARRAY['email','email','email','email','email','email','email','email','email',
			   'phone','phone','phone','phone','phone','form','form','form',
			   'whatsapp','whatsapp','chat'])[:channel],
		(ARRAY['welding','consumables','compressors','generators','gas_power',
			   'tools','pumps','safety'])[:category],
		CASE WHEN :unknown = 1 THEN 'noname1'
			 ELSE 'brand' || lpad((:category + 8 * :brand)::text, 2, '0') END,
		round(:budget, -2),
		jsonb_build_object(
			'utm_source', (ARRAY['yandex','google','direct','email','partner','social','(none)'])[:utm],
			'items', :items,
			'urgent', :urgent <= 15,
			'has_attachment', :attach <= 30,
			'region', 'region' || lpad(:region::text, 2, '0')));
