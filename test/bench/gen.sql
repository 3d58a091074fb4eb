-- test/bench/gen.sql
--	Synthetic but realistically shaped CRM data for the insert and train
--	benchmarks, generated in SQL, deterministic (setseed) for a given size.
--
--	bench.gen_config(nclients)      brands with margins, clients
--	bench.gen_leads(n, nclients, start, span, nfree, seed)
--	                                closed history leads, as rows
--
-- The shape follows the distributor of SPEC.md: a dozen web shops of
-- unequal size, channels dominated by e-mail, 8 product categories with
-- their brands (some brands unknown to scoring.brand, some leads without a
-- brand), companies and persons with industries, a skewed client base
-- (a few clients with many leads, many with one), ~10% of leads without a
-- client, heavy-tailed budgets (some missing), and free features.  The
-- outcome (won/lost) depends on the channel, the client, the budget,
-- the category and some free features, so a model has something to learn.

-- A standard normal deviate (Box-Muller) from two uniforms
CREATE OR REPLACE FUNCTION bench.normal(u1 float8, u2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT sqrt(-2 * ln(greatest(u1, 1e-12))) * cos(2 * pi() * u2) $$;

-- Picks from a list by the lower bounds of its items' shares of [0, 1):
-- pick(u, '{a,b,c}', '{0,.5,.8}') is a for u < .5, b up to .8, c above
CREATE OR REPLACE FUNCTION bench.pick(u float8, items text[], lower float8[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT items[width_bucket(u, lower)] $$;

CREATE OR REPLACE FUNCTION bench.categories() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT '{welding,consumables,compressors,generators,gas_power,tools,pumps,safety}'::text[] $$;

CREATE OR REPLACE FUNCTION bench.industries() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT '{metalworking,construction,production,trade,services,agriculture,food,transport}'::text[] $$;

-- Brands (5 per category, margins 8%..35%) and clients.
CREATE OR REPLACE FUNCTION bench.gen_config(nclients int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM setseed(0.25);
	INSERT INTO scoring.brand (brand, margin)
	SELECT 'brand' || lpad(i::text, 2, '0'),
		   round((0.08 + 0.27 * random())::numeric, 3)
	  FROM generate_series(1, 40) i;

	INSERT INTO scoring.client (client_id, kind, name, inn, okved, industry,
								core_industry, annual_turnover, pool_eligible)
	SELECT i, kind, 'client ' || i,
		   CASE WHEN kind = 'company' THEN lpad((7700000000 + i)::text, 10, '0') END,
		   CASE WHEN kind = 'company' THEN
				CASE WHEN r4 < 0.25 THEN lpad((10 + floor(r5 * 80))::int::text, 2, '0')
					 ELSE (ARRAY['25','41','28','46','70','01','10','49'])[ind] END
				|| '.' || lpad(floor(r6 * 100)::int::text, 2, '0') END,
		   CASE WHEN kind = 'company' THEN (bench.industries())[ind] END,
		   CASE WHEN kind = 'company' AND r7 > 0.05 THEN ind <= 3 END,
		   CASE WHEN kind = 'company' AND r8 > 0.2 THEN
				round(exp(17 + 1.6 * bench.normal(r2, r3))::numeric, -3) END,
		   kind = 'company'
	  FROM (SELECT i, CASE WHEN random() < 0.72 THEN 'company' ELSE 'person' END AS kind,
				   1 + floor(8 * power(random(), 1.3))::int AS ind,
				   random() r2, random() r3, random() r4, random() r5,
				   random() r6, random() r7, random() r8
			  FROM generate_series(1, nclients) i) s;
	PERFORM setval(pg_get_serial_sequence('scoring.client', 'client_id'), nclients);
END;
$$;

-- n closed leads created from start over span, oldest first, as rows of
-- lead columns.  nfree: how many free features (5 for the insert
-- benchmark, 20 for the training one).  Deterministic for a given seed.
CREATE OR REPLACE FUNCTION bench.gen_leads(n int, nclients int,
										   start timestamptz, span interval,
										   nfree int, seed float8)
RETURNS TABLE (n_id int, created_at timestamptz, client_id bigint,
			   shop text, channel text, category text, brand text,
			   budget numeric, features jsonb, status text,
			   closed_at timestamptz, won_profit numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	PERFORM setseed(seed);
	RETURN QUERY
	WITH r AS MATERIALIZED (
		SELECT i, random() r1, random() r2, random() r3, random() r4,
			   random() r5, random() r6, random() r7, random() r8,
			   random() r9, random() r10, random() r11, random() r12,
			   random() r13, random() r14, random() r15, random() r16,
			   random() r17, random() r18, random() r19, random() r20,
			   random() r21, random() r22, random() r23, random() r24,
			   random() r25, random() r26, random() r27, random() r28,
			   random() r29, random() r30, random() r31, random() r32,
			   random() r33, random() r34, random() r35, random() r36,
			   random() r37, random() r38, random() r39, random() r40,
			   random() r41
		  FROM generate_series(1, n) i
	), l AS (
		SELECT r.*,
			   start + span * ((i - 1 + r1) / n) AS created,
			   CASE WHEN r2 < 0.10 THEN NULL
					ELSE 1 + floor(nclients * power(r3, 1.8))::bigint END AS cid,
			   'shop' || lpad((1 + floor(12 * power(r4, 1.6)))::int::text, 2, '0') AS shop,
			   bench.pick(r5, '{email,phone,form,whatsapp,chat,telegram}',
						  '{0,.45,.70,.84,.92,.97}') AS channel,
			   1 + floor(8 * power(r6, 1.4))::int AS cat,
			   CASE WHEN r8 < 0.03 THEN NULL
					ELSE round(exp(11 + 1.5 * bench.normal(r9, r10))::numeric, -2) END AS budget
		  FROM r
	), c AS (
		SELECT l.*, (bench.categories())[cat] AS category,
			   CASE WHEN r7 < 0.03 THEN NULL
					WHEN r7 < 0.05 THEN 'noname' || (1 + floor(r7 * 1000)::int % 7)
					ELSE 'brand' || lpad((cat + 8 * floor(5 * power(r11, 1.5))::int)::text, 2, '0')
			   END AS brand,
			   cl.kind, cl.core_industry, cl.annual_turnover,
			   jsonb_strip_nulls(jsonb_build_object(
				   'utm_source', bench.pick(r12, '{yandex,google,direct,email,partner,social,(none)}',
											'{0,.35,.55,.70,.80,.88,.95}'),
				   'items', 1 + floor(30 * power(r13, 3))::int,
				   'urgent', r14 < 0.15,
				   'has_attachment', r15 < 0.3,
				   'region', 'region' || lpad((1 + floor(85 * power(r16, 2)))::int::text, 2, '0')
			   ) || CASE WHEN nfree <= 5 THEN '{}'::jsonb ELSE jsonb_strip_nulls(jsonb_build_object(
				   'utm_campaign', 'camp' || (1 + floor(60 * power(r21, 2)))::int,
				   'device', bench.pick(r22, '{desktop,mobile,tablet}', '{0,.6,.95}'),
				   'form_type', bench.pick(r23, '{quote,callback,question,order,service}', '{0,.4,.6,.8,.95}'),
				   'lang', CASE WHEN r24 < 0.93 THEN 'ru' WHEN r24 < 0.98 THEN 'en' ELSE 'kz' END,
				   'product_group', 'pg' || (1 + floor(30 * power(r25, 1.5)))::int,
				   'payment_terms', bench.pick(r26, '{prepay,postpay,credit,lease}', '{0,.5,.8,.95}'),
				   'page_views', 1 + floor(40 * power(r27, 2.5))::int,
				   'time_on_site', round((5 + 900 * power(r28, 2))::numeric, 1),
				   'days_since_visit', CASE WHEN r29 < 0.5 THEN floor(365 * power(r30, 2))::int END,
				   'quoted_price', CASE WHEN r31 < 0.6 THEN round(exp(10 + 1.5 * bench.normal(r32, r33))::numeric, -2) END,
				   'discount_pct', CASE WHEN r34 < 0.5 THEN round((20 * power(r35, 2))::numeric, 1) END,
				   'delivery_km', round((2000 * power(r36, 3))::numeric),
				   'employees', CASE WHEN r37 < 0.7 THEN floor(exp(3 + 1.5 * bench.normal(r38, r39)))::int END,
				   'vat_payer', r40 < 0.8,
				   'newsletter', r41 < 0.25
			   )) END) AS features
		  FROM l LEFT JOIN scoring.client cl ON cl.client_id = l.cid
	), o AS (
		SELECT c.*,
			   -2.0
			   + CASE channel WHEN 'phone' THEN 0.8 WHEN 'email' THEN 0.2
							  WHEN 'whatsapp' THEN 0.4 WHEN 'chat' THEN -0.3 ELSE 0 END
			   + CASE kind WHEN 'company' THEN 0.5 WHEN 'person' THEN -0.2 ELSE -0.6 END
			   + CASE WHEN core_industry THEN 0.7 ELSE 0 END
			   + CASE WHEN cid IS NOT NULL AND cid <= nclients / 50 THEN 0.8 ELSE 0 END
			   - 0.25 * coalesce(ln(budget / 60000), 0)
			   + CASE category WHEN 'consumables' THEN 0.4 WHEN 'gas_power' THEN -0.5 ELSE 0 END
			   -- the free features' effects, from the same draws (a features
			   -- ->> 'key' here would rebuild the whole jsonb each time)
			   + CASE WHEN r14 < 0.15 THEN 0.5 ELSE 0 END                  -- urgent
			   + CASE WHEN r12 >= 0.80 AND r12 < 0.88 THEN 0.6 ELSE 0 END  -- partner
			   + CASE WHEN nfree > 5 THEN                                   -- order form,
					CASE WHEN r23 >= 0.8 AND r23 < 0.95 THEN 0.7 ELSE 0 END -- page views,
					+ 0.15 * ln(2 + floor(40 * power(r27, 2.5)))            -- discount
					- CASE WHEN r34 < 0.5 THEN 0.4 * power(r35, 2) ELSE 0 END
				 ELSE 0 END
			   + 1.2 * (r17 - 0.5) AS z
		  FROM c
	)
	SELECT o.i, o.created, o.cid, o.shop, o.channel, o.category, o.brand,
		   o.budget, o.features,
		   CASE WHEN r19 < 1 / (1 + exp(-z)) THEN 'won' ELSE 'lost' END,
		   o.created + make_interval(days => 1 + floor(40 * r20)::int),
		   CASE WHEN r19 < 1 / (1 + exp(-z)) AND o.budget IS NOT NULL
				THEN round(o.budget * coalesce(b.margin, 0.15) * (0.6 + 0.8 * r18)::numeric, 2) END
	  FROM o LEFT JOIN scoring.brand b ON b.brand = o.brand
	 ORDER BY o.i;
END;
$$;
