/*
 * test/demo/generate.sql
 *		Deterministic demo data for the scoring extension.
 *
 *	psql -v months=14 -v leads_per_month=4000 -v seed=0.42 \
 *		 -v now='2026-11-15 12:00+03' -f test/demo/generate.sql
 *
 * (all four are optional; -v clients=N overrides the client base, which
 * defaults to 3.5 x leads_per_month, i.e. 14,000.)  Needs CREATE EXTENSION
 * scoring and empty scoring.client / scoring.lead.  The clock is never
 * read: time is anchored at :now, randomness at setseed(:seed), so two runs
 * give identical rows.
 *
 * The shape, after the interview in shared/context: a distributor of
 * welding equipment, generators and compressors.
 *	- 12 web shops with different base conversion, channels email, phone,
 *	  whatsapp, form, chat;
 *	- categories welding (converts best), consumables (small budgets),
 *	  generators, compressors (worse), gas_power_stations (rare, big);
 *	- 25 brands, margins 0.08..0.35, a few that the shop "knows how to
 *	  sell" convert better;
 *	- 3.5 x leads_per_month clients: ~35% persons, the rest companies in
 *	  production / services / trade; metal-working production is the core
 *	  industry; turnover is log-normal; OKVED is random for 30% of them;
 *	- :months closed months of history (won / lost with won_profit and
 *	  closed_at), then the current month up to :now as open leads ('new');
 *	- about 0.5% odd leads on purpose: no budget, an unknown brand, an
 *	  absurd budget, odd feature shapes, no client, an unseen channel.
 *
 * THE TRAP.  The true win probability is a logistic function of shop,
 * category, brand, client kind / industry / core / turnover, the client's
 * earlier wins, budget and features.urgent; the channel itself matters
 * little.  But ~85% of companies write by e-mail and persons mostly phone,
 * WhatsApp or the form, so e-mail leads win far more often than the rest.
 * A point system that gives points for "e-mail" and for "company"
 * separately counts the same thing twice; a regularised logistic
 * regression does not.
 *
 * Repeat buyers.  A client's win probability rises with its earlier wins,
 * clients write more or less often by segment (persons rarely), and
 * about a fifth of the leads come from clients who won in the last 12
 * months, chosen with weights by segment: a production company (most of
 * all a core one) comes back far more often than a person or a trade
 * company.  That is the lifetime value scoring.train() can learn.
 *
 * With the defaults: 57,433 leads (1,673 of them open), 14,000 clients,
 * win rate 18.5% (persons 4.8%, trade 9.5%, services and non-core
 * production 12.7%, core production 35.6%); 85% of companies' leads and
 * 8% of persons' come by e-mail; e-mail leads win 21%, WhatsApp 8%, yet
 * within a kind e-mail and the rest win alike.  Loads in about 3 seconds.
 *
 * How.  All random numbers are drawn first, row by row, into temp tables
 * (so no plan or join order can change them); the months are then played
 * one after the other in temp tables, because who comes back depends on
 * who won before; the result goes into scoring.client and scoring.lead with
 * one plain INSERT ... SELECT each, so the scoring trigger scores every
 * lead (history in created_at order).
 */

\set ON_ERROR_STOP on

\if :{?months}
\else
\set months 14
\endif
\if :{?leads_per_month}
\else
\set leads_per_month 4000
\endif
\if :{?seed}
\else
\set seed 0.42
\endif
\if :{?now}
\else
\set now '2026-11-15 12:00+03'
\endif
\if :{?clients}
\else
SELECT round(3.5 * :leads_per_month)::int AS clients \gset
\endif

-- refuse to mix with existing data (ids and history would collide)
SELECT EXISTS (SELECT FROM scoring.lead) OR EXISTS (SELECT FROM scoring.client)
	AS gen_not_empty \gset
\if :gen_not_empty
SELECT 'generate.sql: scoring.client or scoring.lead is not empty; run it on a fresh CREATE EXTENSION scoring'::int;
\endif

-- quiet until the summary at the end
\o /dev/null
BEGIN;
-- the same plan and the same month boundaries wherever it runs
SET LOCAL TimeZone = 'Europe/Moscow';
SET LOCAL max_parallel_workers_per_gather = 0;
-- temp tables have no statistics: the planner's guesses would wake up JIT
SET LOCAL jit = off;
SELECT setseed(:seed);

CREATE TEMP TABLE gen_param ON COMMIT DROP AS
SELECT :'now'::timestamptz AS now, :months::int AS months,
	   :leads_per_month::int AS lpm, :clients::int AS clients;

/* ---------------------------------------------------------------------
 * Catalogue: categories, shops, brands, channels (weights and true effects
 * on the log-odds of winning)
 * ------------------------------------------------------------------- */

-- budget: log-normal around med with sigma, clamped to [lo, hi]
CREATE TEMP TABLE gen_cat ON COMMIT DROP AS
SELECT * FROM (VALUES
	-- category,         w_person, w_company, w_repeat, effect, med, sigma, lo, hi
	('welding',            0.38, 0.40, 0.30,  0.40,  150000, 0.9,   30000,  1500000),
	('consumables',        0.45, 0.25, 0.50,  0.10,   12000, 0.7,    3000,    50000),
	('generators',         0.12, 0.17, 0.09,  0.00,  300000, 1.0,   50000,  5000000),
	('compressors',        0.05, 0.15, 0.09, -0.45,  250000, 0.9,   40000,  3000000),
	('gas_power_stations', 0.00, 0.03, 0.02, -0.20, 6000000, 0.6, 2000000, 20000000)
) AS t(category, w_person, w_company, w_repeat, effect, med, sigma, lo, hi);

CREATE TEMP TABLE gen_shop ON COMMIT DROP AS
SELECT * FROM (VALUES
	('svarka-shop',        0.35),
	('generator-pro',      0.10),
	('kompressor-market', -0.30),
	('electrod-opt',       0.20),
	('svarog-store',       0.15),
	('tig-mig',           -0.10),
	('energo-gen',        -0.20),
	('promsvarka',         0.45),
	('instrument-24',     -0.50),
	('weld-expert',        0.05),
	('vozduh-pro',         0.00),
	('metall-master',     -0.25)
) AS t(shop, effect);

-- which shops sell which category, and how many leads each brings
CREATE TEMP TABLE gen_shop_cat ON COMMIT DROP AS
SELECT shop, category, w::numeric AS w FROM (VALUES
	('svarka-shop', 'welding', 30), ('svarka-shop', 'consumables', 20),
	('generator-pro', 'generators', 30), ('generator-pro', 'gas_power_stations', 45),
	('kompressor-market', 'compressors', 35),
	('electrod-opt', 'consumables', 30),
	('svarog-store', 'welding', 18), ('svarog-store', 'consumables', 8),
	('tig-mig', 'welding', 14), ('tig-mig', 'consumables', 12),
	('energo-gen', 'generators', 22), ('energo-gen', 'gas_power_stations', 35),
	('promsvarka', 'welding', 16), ('promsvarka', 'generators', 10),
	('promsvarka', 'compressors', 10), ('promsvarka', 'gas_power_stations', 20),
	('instrument-24', 'welding', 10), ('instrument-24', 'consumables', 15),
	('instrument-24', 'generators', 20), ('instrument-24', 'compressors', 15),
	('weld-expert', 'welding', 12), ('weld-expert', 'consumables', 5),
	('vozduh-pro', 'compressors', 25),
	('metall-master', 'welding', 8), ('metall-master', 'consumables', 10),
	('metall-master', 'compressors', 15)
) AS t(shop, category, w);

-- margin goes to scoring.brand; effect: brands we know how to sell
CREATE TEMP TABLE gen_brand ON COMMIT DROP AS
SELECT * FROM (VALUES
	('Сварог',          0.22,  0.45),
	('Kemppi',          0.18,  0.40),
	('Lincoln Electric',0.16,  0.10),
	('ESAB',            0.17,  0.35),
	('Fubag',           0.20,  0.00),
	('Aurora',          0.24,  0.00),
	('Ресанта',         0.12, -0.20),
	('Fronius',         0.14,  0.00),
	('Telwin',          0.21,  0.00),
	('Blueweld',        0.25, -0.30),
	('СварТех',         0.35,  0.30),	-- our own brand
	('Abicor Binzel',   0.19,  0.00),
	('Hypertherm',      0.13,  0.00),
	('Huter',           0.23, -0.20),
	('Hyundai',         0.15,  0.00),
	('SDMO',            0.12,  0.20),
	('Denyo',           0.10,  0.00),
	('Cummins',         0.09,  0.25),
	('ТСС',             0.17,  0.00),
	('Remeza',          0.20,  0.20),
	('Fiac',            0.16,  0.00),
	('Abac',            0.18,  0.00),
	('Atlas Copco',     0.08, -0.25),
	('Kaeser',          0.11,  0.00),
	('Бинокор',         0.28,  0.00)	-- electrodes and wire
) AS t(brand, margin, effect);

CREATE TEMP TABLE gen_brand_cat ON COMMIT DROP AS
SELECT brand, category, w::numeric AS w FROM (VALUES
	('Сварог', 'welding', 25), ('Kemppi', 'welding', 10),
	('Lincoln Electric', 'welding', 8), ('ESAB', 'welding', 12),
	('Fubag', 'welding', 10), ('Aurora', 'welding', 10),
	('Ресанта', 'welding', 10), ('Fronius', 'welding', 5),
	('Telwin', 'welding', 5), ('Blueweld', 'welding', 5),
	('СварТех', 'welding', 10), ('Hypertherm', 'welding', 3),
	('Бинокор', 'consumables', 30), ('ESAB', 'consumables', 20),
	('Abicor Binzel', 'consumables', 15), ('СварТех', 'consumables', 15),
	('Lincoln Electric', 'consumables', 10), ('Сварог', 'consumables', 10),
	('Huter', 'generators', 20), ('Hyundai', 'generators', 20),
	('Fubag', 'generators', 15), ('ТСС', 'generators', 15),
	('SDMO', 'generators', 10), ('Denyo', 'generators', 8),
	('Ресанта', 'generators', 12),
	('Remeza', 'compressors', 25), ('Fiac', 'compressors', 15),
	('Abac', 'compressors', 15), ('Atlas Copco', 'compressors', 10),
	('Kaeser', 'compressors', 10), ('Fubag', 'compressors', 10),
	('ТСС', 'gas_power_stations', 30), ('Cummins', 'gas_power_stations', 35),
	('SDMO', 'gas_power_stations', 20), ('Denyo', 'gas_power_stations', 15)
) AS t(brand, category, w);

-- channel mix by client kind; the true channel effect is small
CREATE TEMP TABLE gen_chan ON COMMIT DROP AS
SELECT kind, channel, w::numeric AS w FROM (VALUES
	('company', 'email', 85), ('company', 'phone', 7), ('company', 'form', 4),
	('company', 'whatsapp', 2), ('company', 'chat', 2),
	('person', 'email', 8), ('person', 'phone', 35), ('person', 'whatsapp', 30),
	('person', 'form', 17), ('person', 'chat', 10)
) AS t(kind, channel, w);

CREATE TEMP TABLE gen_chan_effect ON COMMIT DROP AS
SELECT * FROM (VALUES
	('email', 0.00), ('phone', 0.15), ('whatsapp', -0.05), ('form', -0.10),
	('chat', -0.15), ('telegram', 0.00)
) AS t(channel, effect);

-- cumulative ranges [lo, hi) in 0..1 for drawing from the weighted lists
CREATE TEMP TABLE gen_cat_pick ON COMMIT DROP AS
SELECT mix, category,
	   (sum(w) OVER (PARTITION BY mix ORDER BY category) - w) / sum(w) OVER (PARTITION BY mix) AS lo,
	   sum(w) OVER (PARTITION BY mix ORDER BY category) / sum(w) OVER (PARTITION BY mix) AS hi
  FROM (SELECT 'person' AS mix, category, w_person::numeric AS w FROM gen_cat
		UNION ALL SELECT 'company', category, w_company::numeric FROM gen_cat
		UNION ALL SELECT 'repeat', category, w_repeat::numeric FROM gen_cat) s
 WHERE w > 0;

CREATE TEMP TABLE gen_shop_pick ON COMMIT DROP AS
SELECT category, shop,
	   (sum(w) OVER (PARTITION BY category ORDER BY shop) - w) / sum(w) OVER (PARTITION BY category) AS lo,
	   sum(w) OVER (PARTITION BY category ORDER BY shop) / sum(w) OVER (PARTITION BY category) AS hi
  FROM gen_shop_cat;

CREATE TEMP TABLE gen_brand_pick ON COMMIT DROP AS
SELECT category, brand,
	   (sum(w) OVER (PARTITION BY category ORDER BY brand) - w) / sum(w) OVER (PARTITION BY category) AS lo,
	   sum(w) OVER (PARTITION BY category ORDER BY brand) / sum(w) OVER (PARTITION BY category) AS hi
  FROM gen_brand_cat;

CREATE TEMP TABLE gen_chan_pick ON COMMIT DROP AS
SELECT kind, channel,
	   (sum(w) OVER (PARTITION BY kind ORDER BY channel) - w) / sum(w) OVER (PARTITION BY kind) AS lo,
	   sum(w) OVER (PARTITION BY kind ORDER BY channel) / sum(w) OVER (PARTITION BY kind) AS hi
  FROM gen_chan;

INSERT INTO scoring.brand (brand, margin)
SELECT brand, margin FROM gen_brand
ON CONFLICT (brand) DO NOTHING;

/* ---------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------- */

CREATE TEMP TABLE gen_client_draw ON COMMIT DROP AS
SELECT i AS client_id, random() AS u_kind, random() AS u_ind, random() AS u_core,
	   random() AS u_t1, random() AS u_t2, random() AS u_okbad, random() AS u_okved,
	   random() AS u_region, random() AS u_name, random() AS u_inn
  FROM gen_param p, generate_series(1, p.clients) AS i
 ORDER BY i;

CREATE TEMP TABLE gen_client ON COMMIT DROP AS
WITH c AS (
	SELECT d.*,
		   CASE WHEN u_kind < 0.35 THEN 'person' ELSE 'company' END AS kind,
		   CASE WHEN u_kind < 0.35 THEN NULL
				WHEN u_ind < 0.45 THEN 'production'
				WHEN u_ind < 0.67 THEN 'services'
				ELSE 'trade' END AS industry
	  FROM gen_client_draw d
), c2 AS (
	SELECT c.*,
		   CASE WHEN kind = 'person' THEN NULL
				ELSE industry = 'production' AND u_core < 0.6 END AS core,
		   -- Box-Muller normal for the log of the turnover
		   sqrt(-2 * ln(1 - u_t1)) * cos(2 * pi() * u_t2) AS z
	  FROM c
), c3 AS (
	SELECT c2.*,
		   CASE WHEN kind = 'person' THEN NULL
				ELSE greatest(2e6, least(5e10, round(exp(ln(
					CASE industry WHEN 'production' THEN 180e6
								  WHEN 'services' THEN 60e6
								  ELSE 120e6 END) + 1.3 * z) / 1000) * 1000))
		   END AS turnover,
		   (ARRAY['Москва', 'Москва', 'Москва', 'Санкт-Петербург', 'Санкт-Петербург',
				  'Екатеринбург', 'Челябинск', 'Новосибирск', 'Казань',
				  'Нижний Новгород', 'Самара', 'Пермь', 'Краснодар', 'Уфа',
				  'Ростов-на-Дону', 'Тюмень'])[1 + floor(u_region * 16)::int] AS region
	  FROM c2
)
SELECT client_id, kind, industry, core, turnover, region,
	   CASE WHEN kind = 'person' THEN
			'Частное лицо ' || client_id
	   ELSE 'ООО «' ||
			CASE WHEN core THEN (ARRAY['Металлист', 'УралСталь', 'СибМаш', 'ЗМК',
					'Металлоконструкции', 'ТехноСвар', 'Завод ЖБИ-Металл', 'Котломаш'])
					[1 + floor(u_name * 8)::int]
				 WHEN industry = 'production' THEN (ARRAY['Молокозавод', 'Агрокомплекс',
					'Лесопилка', 'Пластпром', 'Хлебозавод', 'Стеклотара'])
					[1 + floor(u_name * 6)::int]
				 WHEN industry = 'services' THEN (ARRAY['СтройМонтаж', 'ЭнергоСервис',
					'АвтоРемонт', 'ТрансЛогистик', 'ТеплоСети'])
					[1 + floor(u_name * 5)::int]
				 ELSE (ARRAY['Торговый дом Альфа', 'СнабКомплект', 'ПромТорг',
					'Инструмент-Опт'])[1 + floor(u_name * 4)::int]
			END || '-' || client_id || '»'
	   END AS name,
	   CASE WHEN kind = 'company' THEN lpad((7700000000 + floor(u_inn * 1e9))::bigint::text, 10, '0')
			WHEN u_inn < 0.1 THEN lpad((770000000000 + floor(u_inn * 1e10 * 9))::bigint::text, 12, '0')
	   END AS inn,
	   CASE WHEN kind = 'person' THEN NULL
			-- a third of the codes are whatever the company once registered
			WHEN u_okbad < 0.3 THEN (ARRAY['25.11', '25.62', '25.99', '28.41', '24.10',
				'10.51', '16.10', '22.29', '10.71', '23.61', '33.12', '43.22', '49.41',
				'71.12', '43.29', '46.69', '46.74', '47.52', '46.14', '45.31'])
				[1 + floor(u_okved * 20)::int]
			WHEN core THEN (ARRAY['25.11', '25.62', '25.99', '28.41', '24.10'])[1 + floor(u_okved * 5)::int]
			WHEN industry = 'production' THEN (ARRAY['10.51', '16.10', '22.29', '10.71', '23.61'])[1 + floor(u_okved * 5)::int]
			WHEN industry = 'services' THEN (ARRAY['33.12', '43.22', '49.41', '71.12', '43.29'])[1 + floor(u_okved * 5)::int]
			ELSE (ARRAY['46.69', '46.74', '47.52', '46.14', '45.31'])[1 + floor(u_okved * 5)::int]
	   END AS okved
  FROM c3;

INSERT INTO scoring.client (client_id, kind, name, inn, okved, industry,
							core_industry, annual_turnover, pool_eligible, attrs)
SELECT client_id, kind, name, inn, okved, industry, core, turnover,
	   kind = 'company' AND (industry = 'production' OR turnover >= 100e6),
	   CASE WHEN kind = 'company'
			THEN jsonb_build_object('region', region,
									'employees', greatest(3, round(turnover / 3e6)))
			ELSE jsonb_build_object('region', region) END
  FROM gen_client
 ORDER BY client_id;

SELECT setval(pg_get_serial_sequence('scoring.client', 'client_id'),
			  (SELECT max(client_id) FROM scoring.client));

-- how often a client writes at all (repeat buyers come on top of this):
-- persons rarely, production companies most
CREATE TEMP TABLE gen_client_pick ON COMMIT DROP AS
SELECT client_id, (cum - w) / total AS lo, cum / total AS hi
  FROM (SELECT client_id, w, sum(w) OVER (ORDER BY client_id) AS cum, sum(w) OVER () AS total
		  FROM (SELECT client_id,
					   CASE WHEN kind = 'person' THEN 0.6
							WHEN core THEN 1.3
							WHEN industry = 'production' THEN 1.1
							WHEN industry = 'services' THEN 0.9
							ELSE 1.0 END::float8 AS w
				  FROM gen_client) c) s;
CREATE INDEX ON gen_client_pick (lo);

/* ---------------------------------------------------------------------
 * Months and the random numbers of every lead
 * ------------------------------------------------------------------- */

-- k = 0 .. months-1 are closed months, k = months is the current one
CREATE TEMP TABLE gen_month ON COMMIT DROP AS
SELECT k, ms AS month_start, mdays,
	   CASE WHEN k < p.months THEN mdays
			ELSE floor(extract(epoch FROM p.now - ms) / 86400)::int END AS ndays
  FROM gen_param p,
	   generate_series(0, p.months) AS k,
	   LATERAL (SELECT date_trunc('month', p.now) - (p.months - k) * interval '1 month' AS ms) m,
	   LATERAL (SELECT extract(day FROM (ms + interval '1 month') - ms)::int AS mdays) d
 ORDER BY k;

-- more leads in the building season (peak in June), fewer in winter
ALTER TABLE gen_month ADD COLUMN n_leads int;
UPDATE gen_month g
   SET n_leads = round(p.lpm * (1 + 0.12 * cos(2 * pi() * (extract(month FROM g.month_start) - 6) / 12))
					   * g.ndays / g.mdays)
  FROM gen_param p;

CREATE TEMP TABLE gen_draw ON COMMIT DROP AS
SELECT m.k, i,
	   random() AS u_rep, random() AS u_pick, random() AS u_day, random() AS u_hour,
	   random() AS u_cat, random() AS u_shop, random() AS u_brand, random() AS u_chan,
	   random() AS u_b1, random() AS u_b2, random() AS u_urgent, random() AS u_qty,
	   random() AS u_utm, random() AS u_utm2, random() AS u_region, random() AS u_out,
	   random() AS u_margin, random() AS u_close, random() AS u_odd, random() AS u_odd_kind,
	   random() AS u_odd_shape
  FROM gen_month m, generate_series(1, m.n_leads) AS i
 ORDER BY m.k, i;
CREATE INDEX ON gen_draw (k);
ANALYZE gen_draw, gen_month, gen_client, gen_cat_pick, gen_shop_pick, gen_brand_pick,
	gen_chan_pick, gen_cat, gen_shop, gen_brand, gen_chan_effect, gen_param, gen_client_pick;

/* ---------------------------------------------------------------------
 * One month at a time: who writes depends on who won before
 * ------------------------------------------------------------------- */

-- what each client did before the month being played
CREATE TEMP TABLE gen_state (
	client_id	bigint PRIMARY KEY,
	n_won		int NOT NULL,
	n_lost		int NOT NULL,
	last_win_at timestamptz
) ON COMMIT DROP;

-- recent winners, with cumulative weights for drawing repeat buyers
CREATE TEMP TABLE gen_pool (
	client_id	bigint,
	lo			float8,
	hi			float8
) ON COMMIT DROP;
CREATE INDEX ON gen_pool (lo);

CREATE TEMP TABLE gen_lead (
	k			int,
	i			int,
	created_at	timestamptz,
	client_id	bigint,
	is_repeat	boolean,
	shop		text,
	channel		text,
	category	text,
	brand		text,
	budget		numeric,
	features	jsonb,
	odd			text,
	p_true		float8,
	won			boolean,
	status		text,
	won_profit	numeric,
	closed_at	timestamptz
) ON COMMIT DROP;

CREATE FUNCTION pg_temp.gen_play_month(mk int)
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
	DELETE FROM gen_pool;

	-- a repeat buyer is drawn among clients who won in the last 12 months:
	-- production companies come back far more often than persons or traders
	INSERT INTO gen_pool (client_id, lo, hi)
	SELECT client_id, cum - w, cum
	  FROM (SELECT s.client_id, w,
				   sum(w) OVER (ORDER BY s.client_id) AS cum
			  FROM gen_state s
			  JOIN gen_client c USING (client_id)
			  JOIN gen_month m ON m.k = mk
			  CROSS JOIN LATERAL (SELECT CASE
					WHEN c.kind = 'person' THEN 0.3
					WHEN c.core THEN 4.0
					WHEN c.industry = 'production' THEN 3.0
					WHEN c.industry = 'services' THEN 1.5
					ELSE 0.6 END::float8 AS w) ww
			 WHERE s.last_win_at >= m.month_start - interval '12 months') s;

	INSERT INTO gen_lead
	WITH pool AS (
		SELECT coalesce(max(hi), 0) AS total FROM gen_pool
	), base AS (
		SELECT d.*, m.month_start, m.ndays, p.clients, p.now, p.months,
			   pool.total > 0 AND d.u_rep < 0.22 AS is_repeat,
			   -- odd leads: about 0.5%, of six kinds
			   CASE WHEN d.u_odd < 0.005 THEN
					(ARRAY['no_budget', 'unknown_brand', 'odd_features', 'no_client',
						   'unseen_channel', 'absurd_budget'])[1 + floor(d.u_odd_kind * 6)::int]
			   END AS odd
		  FROM gen_draw d
		  JOIN gen_month m ON m.k = d.k
		  CROSS JOIN gen_param p
		  CROSS JOIN pool
		 WHERE d.k = mk
	), who AS (
		SELECT b.*,
			   CASE WHEN b.odd = 'no_client' THEN NULL
					WHEN b.is_repeat THEN (SELECT gp.client_id FROM gen_pool gp
											 WHERE gp.lo <= b.u_pick * (SELECT total FROM pool)
											 ORDER BY gp.lo DESC LIMIT 1)
					-- anyone from the base, by how active the segment is
					ELSE (SELECT cp.client_id FROM gen_client_pick cp
						   WHERE cp.lo <= b.u_pick
						   ORDER BY cp.lo DESC LIMIT 1)
			   END AS client_id
		  FROM base b
	), cl AS (
		SELECT w.*, c.kind, c.industry, c.core, c.turnover,
			   coalesce(c.region, (ARRAY['Москва', 'Санкт-Петербург', 'Екатеринбург',
					'Казань', 'Новосибирск', 'Краснодар'])[1 + floor(w.u_region * 6)::int]) AS region,
			   coalesce(s.n_won, 0) AS n_won, coalesce(s.n_lost, 0) AS n_lost,
			   -- the category mix: persons, companies, or a repeat purchase
			   CASE WHEN w.is_repeat THEN 'repeat'
					WHEN c.kind = 'company' THEN 'company'
					ELSE 'person' END AS mix,
			   coalesce(c.kind, 'person') AS chan_kind
		  FROM who w
		  LEFT JOIN gen_client c USING (client_id)
		  LEFT JOIN gen_state s USING (client_id)
	), pick AS (
		SELECT cl.*, cp.category, sp.shop, bp.brand, chp.channel
		  FROM cl
		  JOIN gen_cat_pick cp ON cp.mix = cl.mix AND cl.u_cat >= cp.lo AND cl.u_cat < cp.hi
		  JOIN gen_shop_pick sp ON sp.category = cp.category AND cl.u_shop >= sp.lo AND cl.u_shop < sp.hi
		  JOIN gen_brand_pick bp ON bp.category = cp.category AND cl.u_brand >= bp.lo AND cl.u_brand < bp.hi
		  JOIN gen_chan_pick chp ON chp.kind = cl.chan_kind AND cl.u_chan >= chp.lo AND cl.u_chan < chp.hi
	), attrs AS (
		SELECT pk.*, gc.effect AS cat_effect, gc.med,
			   gs.effect AS shop_effect, gb.effect AS brand_effect, gb.margin,
			   ce.effect AS chan_effect,
			   -- budget: log-normal by category, persons smaller, big companies bigger
			   greatest(gc.lo, least(gc.hi,
					exp(ln(gc.med) + gc.sigma * sqrt(-2 * ln(1 - pk.u_b1)) * cos(2 * pi() * pk.u_b2))
					* CASE WHEN pk.kind = 'company' THEN power(pk.turnover / 100e6, 0.12)
						   ELSE 0.6 END)) AS budget_raw,
			   pk.u_urgent < 0.18 AS urgent,
			   CASE WHEN pk.category = 'consumables' THEN 1 + floor(power(pk.u_qty, 2) * 200)
					ELSE 1 + floor(power(pk.u_qty, 3) * 8) END::int AS quantity,
			   CASE WHEN pk.channel IN ('form', 'chat', 'whatsapp') OR pk.u_utm < 0.3 THEN
					(ARRAY['yandex', 'yandex', 'yandex', 'google', 'avito', 'direct',
						   'email_campaign', 'partner'])[1 + floor(pk.u_utm2 * 8)::int]
			   END AS utm_source,
			   -- business hours mostly, Moscow time
			   pk.month_start + floor(pk.u_day * pk.ndays) * interval '1 day'
				   + CASE WHEN pk.u_hour < 0.82 THEN 9 + pk.u_hour / 0.82 * 10
						  ELSE (pk.u_hour - 0.82) / 0.18 * 24 END * interval '1 hour' AS t
		  FROM pick pk
		  JOIN gen_cat gc ON gc.category = pk.category
		  JOIN gen_shop gs ON gs.shop = pk.shop
		  JOIN gen_brand gb ON gb.brand = pk.brand
		  JOIN gen_chan_effect ce ON ce.channel = pk.channel
	), truth AS (
		SELECT a.*,
			   CASE WHEN a.budget_raw < 100000 THEN round(a.budget_raw / 100) * 100
					ELSE round(a.budget_raw / 1000) * 1000 END AS budget_true,
			   -- the true log-odds of winning
			   -1.95
			   + a.shop_effect + a.chan_effect + a.cat_effect + a.brand_effect
			   + CASE WHEN a.kind IS DISTINCT FROM 'company' THEN -1.6
					  WHEN a.core THEN 0.85
					  WHEN a.industry = 'production' THEN -0.30
					  WHEN a.industry = 'services' THEN 0.0
					  ELSE -0.40 END
			   -- companies of a middling size convert best
			   + CASE WHEN a.kind = 'company' THEN
					0.30 * ((ln(a.turnover) - ln(150e6)) / 1.3)
					- 0.25 * power((ln(a.turnover) - ln(150e6)) / 1.3, 2)
				 ELSE 0 END
			   -- earlier wins: a smoothed win rate, 0 for a new client
			   + 2.0 * ((a.n_won + 0.2) / (a.n_won + a.n_lost + 1) - 0.2)
			   + CASE WHEN a.urgent THEN 0.35 ELSE 0 END
			   -- a bigger deal than usual for the category is harder to win
			   - 0.20 * (ln(a.budget_raw) - ln(a.med)) AS logit
		  FROM attrs a
	)
	SELECT t.k, t.i,
		   date_trunc('second', t.t) AS created_at,
		   t.client_id, t.is_repeat, t.shop,
		   CASE WHEN t.odd = 'unseen_channel' THEN 'telegram' ELSE t.channel END,
		   t.category,
		   CASE WHEN t.odd = 'unknown_brand'
				THEN (ARRAY['NoName', 'Jasic-клон', 'ПромСвар-Китай'])[1 + floor(t.u_odd_shape * 3)::int]
				ELSE t.brand END,
		   CASE WHEN t.odd = 'no_budget' THEN NULL
				WHEN t.odd = 'absurd_budget' THEN 99999999999999
				ELSE t.budget_true END,
		   CASE WHEN t.odd = 'odd_features' THEN
				(ARRAY['{"region": null, "urgent": "yes", "quantity": "много"}',
					   '{"quantity": -5, "note": {"nested": [1, 2, {"x": null}]}, "": "empty key"}',
					   '{"urgent": 1, "quantity": 1e30, "utm_source": ["yandex", "google"]}',
					   '{"Регион": "Москва", "weird key with spaces": true, "quantity": 0.5}'
				])[1 + floor(t.u_odd_shape * 4)::int]::jsonb
				ELSE jsonb_build_object('region', t.region, 'urgent', t.urgent,
										'quantity', t.quantity)
					 || CASE WHEN t.utm_source IS NOT NULL
							 THEN jsonb_build_object('utm_source', t.utm_source)
							 ELSE '{}' END
		   END,
		   t.odd,
		   t.p_true, t.won,
		   -- closed months are won or lost, the current month is open
		   CASE WHEN t.k = t.months THEN 'new'
				WHEN t.won THEN 'won' ELSE 'lost' END,
		   CASE WHEN t.k < t.months AND t.won THEN
				round(t.budget_true * CASE WHEN t.odd = 'unknown_brand' THEN 0.15 ELSE t.margin END
					  * (0.8 + 0.4 * t.u_margin))
		   END,
		   CASE WHEN t.k < t.months THEN
				least(date_trunc('second', t.t + (1 + t.u_close * 29) * interval '1 day'),
					  t.now - interval '1 hour')
		   END
	  FROM (SELECT tr.*, 1 / (1 + exp(-tr.logit)) AS p_true,
				   -- a typo of a budget is never won
				   tr.u_out < 1 / (1 + exp(-tr.logit))
					   AND tr.odd IS DISTINCT FROM 'absurd_budget' AS won
			  FROM truth tr) t;

	-- what the next months know about each client
	INSERT INTO gen_state AS s (client_id, n_won, n_lost, last_win_at)
	SELECT client_id, count(*) FILTER (WHERE won), count(*) FILTER (WHERE NOT won),
		   max(created_at) FILTER (WHERE won)
	  FROM gen_lead
	 WHERE k = mk AND client_id IS NOT NULL AND status IN ('won', 'lost')
	 GROUP BY client_id
	ON CONFLICT (client_id) DO UPDATE
	   SET n_won = s.n_won + excluded.n_won,
		   n_lost = s.n_lost + excluded.n_lost,
		   last_win_at = greatest(s.last_win_at, excluded.last_win_at);

	SELECT count(*) FROM gen_lead WHERE k = mk;
$$;

SELECT format('SELECT pg_temp.gen_play_month(%s) AS month_%s', k, k)
  FROM gen_month ORDER BY k
\gexec

/* ---------------------------------------------------------------------
 * Into scoring.lead: one INSERT, in created_at order, through the trigger
 * ------------------------------------------------------------------- */

INSERT INTO scoring.lead (created_at, client_id, shop, channel, category, brand,
						  budget, features, status, won_profit, closed_at)
SELECT created_at, client_id, shop, channel, category, brand,
	   budget, features, status, won_profit, closed_at
  FROM gen_lead
 ORDER BY created_at, k, i;

\o
-- a summary of what was made
SELECT count(*) AS leads,
	   count(*) FILTER (WHERE status IN ('won', 'lost')) AS closed,
	   count(*) FILTER (WHERE status = 'new') AS open,
	   round(avg(won::int) FILTER (WHERE status IN ('won', 'lost')), 3) AS win_rate,
	   count(*) FILTER (WHERE odd IS NOT NULL) AS odd,
	   (SELECT count(*) FROM scoring.client) AS clients
  FROM gen_lead;

COMMIT;
