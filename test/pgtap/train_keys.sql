--
-- test/pgtap/train_keys.sql
--	train() names each free feature by its key once and, for the next
--	lead, guesses the key from the order the last lead had its keys in
--	(src/train.c, train_free_field).  Here every lead carries its own
--	subset of keys, of every JSON type, some with '=' and '%' in them, one
--	key a string on some leads and a number on others, now and then a key
--	no other lead has, and on every tenth lead 40 keys more (jsonb stores
--	every 32nd entry's end instead of its length, and features.c reads the
--	entries where they lie): the guesses miss, skip and hit in every way.
--	The model must name exactly the levels and numbers the leads carry,
--	and give each key's values the effect they have: "a" decides the
--	outcome, "b" takes the same values and decides nothing.
--
BEGIN;
SELECT plan(5);

SET LOCAL timezone = 'UTC';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);

-- u(i, k): deterministic uniform numbers in [0, 1), independent across k
CREATE FUNCTION pg_temp.u(i int, k int) RETURNS float8
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT ('x' || substr(md5(i || ':' || k), 1, 8))::bit(32)::bigint / 4294967296.0 $$;

INSERT INTO scoring.lead (created_at, shop, channel, category, brand, budget,
						  features, status, closed_at)
SELECT '2023-01-01'::timestamptz + (i % 300) * interval '1 day', 'web1',
	   CASE WHEN i % 3 = 0 THEN 'phone' ELSE 'email' END, 'welding', 'Fubag',
	   1000 + (i * 7919) % 50000, f,
	   CASE WHEN pg_temp.u(i, 0) <
				 1 / (1 + exp(0.5 - CASE f->>'a' WHEN 'hot' THEN 2 ELSE 0 END))
			THEN 'won' ELSE 'lost' END,
	   '2023-01-01'::timestamptz + (i % 300) * interval '1 day' + interval '3 days'
  FROM generate_series(1, 4000) AS i,
	   LATERAL (SELECT jsonb_strip_nulls(jsonb_build_object(
			'a', CASE WHEN pg_temp.u(i, 1) < 0.8
					  THEN CASE WHEN i % 2 = 0 THEN 'hot' ELSE 'cold' END END,
			'b', CASE WHEN pg_temp.u(i, 2) < 0.8
					  THEN (ARRAY['hot', 'cold', 'warm'])[i % 3 + 1] END,
			'n', CASE WHEN pg_temp.u(i, 3) < 0.6 THEN (i * 37) % 101 + 0.25 END,
			'flag', CASE WHEN pg_temp.u(i, 4) < 0.7 THEN i % 5 = 0 END,
			'k=v', CASE WHEN pg_temp.u(i, 5) < 0.5
						THEN CASE WHEN i % 7 < 3 THEN 'x' ELSE 'y' END END,
			'p%', CASE WHEN pg_temp.u(i, 6) < 0.5 THEN (i * 13) % 50 END,
			'mixed', CASE WHEN pg_temp.u(i, 7) < 0.6
						  THEN CASE WHEN i % 4 = 0 THEN to_jsonb('word'::text)
									ELSE to_jsonb(i % 9 + 0.5) END END,
			'obj', CASE WHEN pg_temp.u(i, 8) < 0.3 THEN '{"a": "hot"}'::jsonb END,
			'only' || i, CASE WHEN i % 250 = 0 THEN 'r' END))
			   -- every tenth lead: 40 keys more, past the stride at which
			   -- jsonb stores an entry's end instead of its length
			   || CASE WHEN i % 10 = 0 THEN
					(SELECT jsonb_object_agg('w' || j,
							 CASE j % 3 WHEN 0 THEN to_jsonb(j + i % 7)
										WHEN 1 THEN to_jsonb('s' || (i + j) % 3)
										ELSE to_jsonb((i + j) % 2 = 0) END)
					   FROM generate_series(1, 40) AS j)
				  ELSE '{}' END AS f) AS lead;

SELECT ok((SELECT count(DISTINCT k) >= 8 FROM scoring.lead,
				  LATERAL (SELECT string_agg(key, ',' ORDER BY key) AS k
							 FROM jsonb_object_keys(features) AS key) AS keys),
		  'the leads carry at least 8 different sets of keys');

-- every level and number is its own column: min_count 1, no ranges
CREATE TEMP TABLE m AS
SELECT scoring.train('2023-01-01', '2024-01-01',
					 '{"min_count": 1, "bins": 0, "holdout": 0}') AS id;

-- What the leads carry, named as features.c names it: a key's '%' and '='
-- written %25 and %3D; a string or a boolean is the level "key=value", a
-- number the number "key" and the level "key=(present)"; objects nothing.
CREATE TEMP TABLE carried AS
SELECT DISTINCT 'features.' || replace(replace(e.key, '%', '%25'), '=', '%3D')
				|| s.suffix AS name
  FROM scoring.lead l, jsonb_each(l.features) AS e,
	   LATERAL (SELECT '=' || (e.value #>> '{}') AS suffix
				 WHERE jsonb_typeof(e.value) IN ('string', 'boolean')
				UNION ALL
				SELECT x FROM (VALUES (''), ('=(present)')) AS v (x)
				 WHERE jsonb_typeof(e.value) = 'number') AS s;

SELECT set_eq(
	$$SELECT key FROM scoring.model, jsonb_object_keys(weights) AS key
	   WHERE model_id = (SELECT id FROM m) AND key LIKE 'features.%'$$,
	'SELECT name FROM carried',
	'the model names exactly the free levels and numbers the leads carry');

SELECT is((SELECT count(*) FROM carried WHERE name LIKE 'features.only%'), 16::bigint,
		  'keys that one lead alone has are among them');

-- weight(name): a coefficient of the model
CREATE FUNCTION pg_temp.w(name text) RETURNS float8 LANGUAGE sql STABLE
	AS $$ SELECT (weights->>name)::float8 FROM scoring.model
		   WHERE model_id = (SELECT id FROM m) $$;

SELECT ok(pg_temp.w('features.a=hot') - pg_temp.w('features.a=cold') BETWEEN 1.5 AND 2.5,
		  format('"a" carries its effect: hot over cold %s for a true 2',
				 round((pg_temp.w('features.a=hot') - pg_temp.w('features.a=cold'))::numeric, 2)));

SELECT ok(greatest(pg_temp.w('features.b=hot'), pg_temp.w('features.b=cold'),
				   pg_temp.w('features.b=warm')) -
		  least(pg_temp.w('features.b=hot'), pg_temp.w('features.b=cold'),
				pg_temp.w('features.b=warm')) < 0.4,
		  '"b", with the same values, carries none of it');

SELECT * FROM finish();
ROLLBACK;
