-- test/bench/sequences_load.sql
--	Data of the follow-up sequence benchmark (run by sequences_bench.sh on
--	a fresh database with the extension):
--	  8 managers
--	  :n clients (companies in Moscow, with an e-mail), each with two
--	    earlier purchases (won leads of 2025) and one open lead (accepted,
--	    priority 2, assigned round-robin, a request with model and
--	    quantity)
--	  the sequence "bench" (three steps: at once, +3 days, +3 days; the
--	    first renders the client's name, the request, the purchases list
--	    and the manager's name), and "bench_capped", the same with a daily
--	    cap of :cap per manager
--	  :n active enrollments in "bench", all due at :'now' (next_at spread
--	    over the hour before)
--	Loaded with session_replication_role = replica: no triggers and no
--	foreign key checks while loading (the data is consistent by
--	construction: no lead is priority 1), then VACUUM ANALYZE.
--
-- psql -v n=100000 -v cap=1000 -v now='2026-03-04 10:00+00' -f sequences_load.sql

\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('ESAB', 0.5), ('Kemppi', 0.3);

INSERT INTO scoring.manager (manager_id, login, full_name, tier)
SELECT m, 'manager' || m, (ARRAY['Менеджер Один', 'Менеджер Два', 'Олег Петров', 'Мария Козлова',
								 'Иван Сидоров', 'Елена Орлова', 'Сергей Волков', 'Ольга Белова'])[m],
	   'junior'
  FROM generate_series(1, 8) AS m;

INSERT INTO scoring.client (client_id, kind, name, industry, core_industry, annual_turnover,
							attrs)
SELECT i, 'company', 'ООО «Клиент ' || i || '»', 'industry ' || (i % 20), i % 3 = 0,
	   1000000 + (i::bigint * 7919) % 500000000,
	   jsonb_build_object('email', 'buyer' || i || '@example.ru')
  FROM generate_series(1, :n) AS i;

-- two purchases per client: leads :n + i and 2 * :n + i, won in 2025
INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, category, brand,
						  budget, features, status, p_win, potential_profit, expected_profit,
						  priority, won_profit, closed_at)
SELECT k * :n + i, timestamptz '2025-01-01 09:00+00' + ((i + k * 7) % 300) * interval '1 day',
	   i, 'shop' || (i % 12), 'email',
	   (ARRAY['electrodes', 'wire', 'masks', 'gas', 'torches'])[1 + (i + k) % 5],
	   CASE WHEN (i + k) % 4 = 0 THEN NULL ELSE (ARRAY['Fubag', 'ESAB', 'Kemppi'])[1 + (i + k) % 3] END,
	   1000 + (i * 37 + k * 11) % 50000, jsonb_build_object('qty', 1 + i % 50),
	   'won', 0.5, 500, 250, 3, 500, timestamptz '2025-01-05 09:00+00' + ((i + k * 7) % 300) * interval '1 day'
  FROM generate_series(1, :n) AS i, generate_series(1, 2) AS k;

-- the open leads 1..:n
INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, category, brand,
						  budget, features, status, p_win, potential_profit, expected_profit,
						  priority, assignee_id, assigned_at)
SELECT i, timestamptz '2026-03-01 09:00+00' + (i % 1440) * interval '1 minute', i,
	   'shop' || (i % 12), 'email',
	   (ARRAY['welding', 'compressors', 'generators'])[1 + i % 3],
	   (ARRAY['Fubag', 'ESAB', 'Kemppi'])[1 + i % 3],
	   50000 + (i * 13) % 100000,
	   jsonb_build_object('model', 'IRMIG ' || (160 + i % 5 * 20), 'qty', 1 + i % 4,
						  'delivery', CASE WHEN i % 2 = 0 THEN 'Москва' ELSE 'самовывоз' END),
	   'accepted', 0.5, 10000, 5000, 2, 1 + i % 8, timestamptz '2026-03-01 09:05+00'
  FROM generate_series(1, :n) AS i;
SELECT setval(pg_get_serial_sequence('scoring.lead', 'lead_id'), 3 * :n);
SELECT setval(pg_get_serial_sequence('scoring.client', 'client_id'), :n);

INSERT INTO scoring.sequence (name, steps, business_days, daily_cap, description)
SELECT name, jsonb_build_array(
		   jsonb_build_object('delay', '0',
			   'subject', 'Ваш запрос: {{lead.category}} {{lead.brand}}',
			   'body', E'Здравствуйте{{#client.name}}, {{client.name}}{{/client.name}}!\n\n'
					   'Вы спрашивали: {{request.model}}, {{request.qty}} шт., доставка: {{request.delivery}}.\n'
					   '{{#purchases}}- {{date}}: {{category}}{{#brand}} ({{brand}}){{/brand}}, {{budget}} руб.\n{{/purchases}}'
					   '{{^purchases}}Вы у нас впервые.\n{{/purchases}}'
					   '\nС уважением,\n{{#manager}}{{manager.full_name}}{{/manager}}{{^manager}}отдел продаж{{/manager}}'),
		   jsonb_build_object('delay', '3 days', 'subject', 'Re: {{lead.category}}',
			   'body', 'Напоминаем о запросе {{lead.lead_id}}, {{client.name}}. {{manager.full_name}}'),
		   jsonb_build_object('delay', '3 days', 'subject', 'Re: {{lead.category}}',
			   'body', 'Последнее письмо по запросу {{lead.lead_id}}. {{manager.full_name}}')),
	   false, cap, 'benchmark'
  FROM (VALUES ('bench', NULL::int), ('bench_capped', :cap)) AS v(name, cap);

INSERT INTO scoring.enrollment (lead_id, sequence, step, next_at, started_at)
SELECT i, 'bench', 0, :'now'::timestamptz - (i % 3600) * interval '1 second',
	   :'now'::timestamptz - interval '1 hour'
  FROM generate_series(1, :n) AS i;

RESET session_replication_role;
VACUUM ANALYZE scoring.manager, scoring.client, scoring.lead, scoring.sequence,
	scoring.enrollment, scoring.outbox;
CHECKPOINT;
