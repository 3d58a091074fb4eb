--
-- The JSON condition language of refusal rules and routes (src/condition.c)
--
-- condition_matches(condition, subject) evaluates a condition against a
-- lead given as JSON: lead columns at the top, client columns under
-- "client", free features under "features".  Each query below lists the
-- condition, the result the specification asks for (want) and the result
-- (got); the two columns must agree on every row.
--
\set subj '{"shop": "weld.ru", "channel": "email", "brand": null, "budget": 100000, "p_win": 0.25, "expected_profit": 3750.5, "priority": 3, "status": "new", "client": {"kind": "company", "industry": "production", "core_industry": true, "annual_turnover": 1e30, "okved": null}, "features": {"colour": "red", "size": 10, "urgent": false, "a.b": "dotted", "num_str": "10", "nested": {"x": 1}, "list": [1, 2], "none": null}}'

-- {} and scalars (equality)
SELECT cond, want, scoring.condition_matches(cond::jsonb, :'subj') AS got
  FROM (VALUES
	('{}', true),
	('{"shop": "weld.ru"}', true),
	('{"shop": "Weld.ru"}', false),
	('{"budget": 100000}', true),
	('{"budget": 100000.0}', true),
	('{"budget": 1e5}', true),
	('{"budget": 100001}', false),
	('{"budget": 100000.0000000000000000001}', false),
	('{"client.annual_turnover": 1e30}', true),
	('{"client.annual_turnover": 1000000000000000000000000000000}', true),
	('{"client.annual_turnover": 1000000000000000000000000000001}', false),
	('{"client.core_industry": true}', true),
	('{"client.core_industry": false}', false),
	('{"client.kind": "company", "client.industry": "production"}', true),
	('{"features.urgent": false}', true),
	('{"features.a.b": "dotted"}', true),
	('{"features.colour": "red", "features.size": 10}', true),
	('{"shop": "weld.ru", "channel": "phone"}', false),
	('{"shop": "weld.ru", "channel": "email", "priority": 3, "status": "new"}', true),
	('{"p_win": 0.25, "expected_profit": 3750.50}', true)
  ) AS t(cond, want);

-- every operator, on a value that is present
SELECT cond, want, scoring.condition_matches(cond::jsonb, :'subj') AS got
  FROM (VALUES
	('{"channel": {"eq": "email"}}', true),
	('{"channel": {"eq": "phone"}}', false),
	('{"budget": {"eq": 100000.000}}', true),
	('{"channel": {"ne": "phone"}}', true),
	('{"channel": {"ne": "email"}}', false),
	('{"budget": {"ne": 100000.000}}', false),
	('{"channel": {"in": ["phone", "email"]}}', true),
	('{"channel": {"in": ["phone", "chat"]}}', false),
	('{"budget": {"in": [5, 100000.00]}}', true),
	('{"client.core_industry": {"in": [true]}}', true),
	('{"channel": {"nin": ["phone", "chat"]}}', true),
	('{"channel": {"nin": ["phone", "email"]}}', false),
	('{"channel": {"nin": []}}', true),
	('{"budget": {"lt": 100000}}', false),
	('{"budget": {"lt": 100000.01}}', true),
	('{"budget": {"lte": 100000}}', true),
	('{"budget": {"lte": 99999.99}}', false),
	('{"budget": {"gt": 99999.99}}', true),
	('{"budget": {"gt": 100000}}', false),
	('{"budget": {"gte": 100000}}', true),
	('{"budget": {"gte": 100000.01}}', false),
	('{"budget": {"gte": 50000, "lt": 1000000}}', true),
	('{"budget": {"gte": 50000, "lt": 100000}}', false),
	('{"priority": {"gte": 3, "lte": 3, "ne": 4}}', true),
	('{"client.annual_turnover": {"gt": 1e29}}', true),
	('{"client.annual_turnover": {"gt": 1e30}}', false),
	('{"client.annual_turnover": {"lt": 1e31}}', true),
	('{"p_win": {"gt": -1e-30, "lt": 0.2500000000000000000001}}', true),
	('{"shop": {"exists": true}}', true),
	('{"shop": {"exists": false}}', false)
  ) AS t(cond, want);

-- missing values: an absent key, JSON null, an object or an array
-- satisfy only exists: false, ne and nin
SELECT cond, want, scoring.condition_matches(cond::jsonb, :'subj') AS got
  FROM (VALUES
	('{"category": "welding"}', false),
	('{"category": {"eq": "welding"}}', false),
	('{"category": {"ne": "welding"}}', true),
	('{"category": {"in": ["welding"]}}', false),
	('{"category": {"nin": ["welding"]}}', true),
	('{"category": {"lt": 1}}', false),
	('{"category": {"lte": 1}}', false),
	('{"category": {"gt": 1}}', false),
	('{"category": {"gte": 1}}', false),
	('{"category": {"exists": true}}', false),
	('{"category": {"exists": false}}', true),
	('{"category": {"exists": false, "ne": "x", "nin": ["y"]}}', true),
	('{"category": {"exists": false, "eq": "x"}}', false),
	('{"brand": {"exists": false}}', true),
	('{"brand": {"ne": "Fubag"}}', true),
	('{"client.okved": {"exists": false}}', true),
	('{"features.none": {"exists": false}}', true),
	('{"features.nested": {"exists": false}}', true),
	('{"features.list": {"exists": false}}', true),
	('{"features.list": {"in": [1, 2]}}', false),
	('{"features.nested.x": 1}', false),
	('{"features.nope": {"ne": 1}}', true),
	('{"features.nope": {"nin": [1]}}', true)
  ) AS t(cond, want);

-- a string and a number are never equal, and only numbers are ordered
SELECT cond, want, scoring.condition_matches(cond::jsonb, :'subj') AS got
  FROM (VALUES
	('{"features.num_str": "10"}', true),
	('{"features.num_str": 10}', false),
	('{"features.num_str": {"ne": 10}}', true),
	('{"features.num_str": {"lt": 100}}', false),
	('{"features.num_str": {"gte": 1}}', false),
	('{"features.size": "10"}', false),
	('{"features.size": {"in": ["10", true]}}', false),
	('{"features.size": {"nin": ["10"]}}', true),
	('{"client.core_industry": "true"}', false),
	('{"client.core_industry": 1}', false),
	('{"features.urgent": {"lt": 1}}', false),
	('{"features.urgent": {"ne": 0}}', true),
	('{"shop": {"gt": 0}}', false)
  ) AS t(cond, want);

-- any: one of the conditions holds; beside other keys all must hold
SELECT cond, want, scoring.condition_matches(cond::jsonb, :'subj') AS got
  FROM (VALUES
	('{"any": [{"channel": "phone"}, {"channel": "email"}]}', true),
	('{"any": [{"channel": "phone"}, {"channel": "chat"}]}', false),
	('{"any": [{}]}', true),
	('{"any": [{"category": {"exists": false}}]}', true),
	('{"shop": "weld.ru", "any": [{"budget": {"lt": 1000}}, {"client.kind": "company"}]}', true),
	('{"shop": "other", "any": [{"client.kind": "company"}]}', false),
	('{"shop": "weld.ru", "any": [{"budget": {"lt": 1000}}, {"client.kind": "person"}]}', false),
	('{"any": [{"channel": "email", "budget": {"gt": 1e6}}, {"channel": "email", "budget": {"lte": 1e6}}]}', true),
	('{"any": [{"channel": "phone"}, {"any": [{"category": {"exists": true}}, {"features.colour": {"in": ["red", "blue"]}}]}]}', true),
	('{"any": [{"channel": "phone"}, {"any": [{"category": {"exists": true}}, {"features.colour": "green"}]}]}', false),
	('{"client.kind": "person", "budget": {"lt": 5000}}', false)
  ) AS t(cond, want);

-- 32 levels of any are allowed, and 1000 keys in one object
SELECT scoring.condition_valid((repeat('{"any": [', 32) || '{"shop": "weld.ru"}' || repeat(']}', 32))::jsonb);
SELECT scoring.condition_matches((repeat('{"any": [', 32) || '{"shop": "weld.ru"}' || repeat(']}', 32))::jsonb, :'subj');
SELECT scoring.condition_matches((repeat('{"any": [', 32) || '{"shop": "x"}' || repeat(']}', 32))::jsonb, :'subj');
SELECT scoring.condition_valid(jsonb_object_agg('features.k' || i, i))
  FROM generate_series(1, 1000) AS i;
SELECT scoring.condition_matches(jsonb_object_agg('features.k' || i, jsonb_build_object('exists', false)), :'subj')
  FROM generate_series(1, 1000) AS i;

-- the subject: no client, a null client, features that are not an object
SELECT subj, cond, want, scoring.condition_matches(cond::jsonb, subj::jsonb) AS got
  FROM (VALUES
	('{"shop": "x"}', '{"client.kind": {"exists": false}}', true),
	('{"shop": "x"}', '{"client.kind": {"ne": "person"}}', true),
	('{"shop": "x"}', '{"client.kind": "company"}', false),
	('{"client": null}', '{"client.kind": {"nin": ["person"]}}', true),
	('{"client": "company"}', '{"client.kind": {"exists": true}}', false),
	('{"client": {"kind": "person"}}', '{"client.kind": "person"}', true),
	('{"features": "red"}', '{"features.colour": {"exists": false}}', true),
	('{"features": {"colour": "red"}}', '{"features.colour": "red"}', true),
	('{}', '{}', true)
  ) AS t(subj, cond, want);

-- strict: SQL NULL in, NULL out
SELECT scoring.condition_valid(NULL) IS NULL AS valid_null,
	   scoring.condition_matches(NULL, '{}') IS NULL AS matches_null;

-- a lead row and its client, the way rules are checked in SQL
CREATE TEMP TABLE t_client (client_id int, kind text, core_industry bool);
CREATE TEMP TABLE t_lead (lead_id int, client_id int, channel text,
						  budget numeric, features jsonb);
INSERT INTO t_client VALUES (1, 'person', NULL), (2, 'company', true);
INSERT INTO t_lead VALUES
	(1, 1, 'email', 3000, '{"consumables": true}'),
	(2, 2, 'phone', 250000, '{}'),
	(3, NULL, 'email', NULL, '{}'),
	(4, 2, 'chat', 'NaN', '{}');
SELECT l.lead_id,
	   scoring.condition_matches('{"client.kind": "person", "budget": {"lt": 5000}}', s) AS small_person,
	   scoring.condition_matches('{"budget": {"gte": 100000}}', s) AS big,
	   scoring.condition_matches('{"budget": {"lt": 100000}}', s) AS small,
	   scoring.condition_matches('{"budget": {"exists": false}}', s) AS no_budget,
	   scoring.condition_matches('{"client.core_industry": {"ne": true}}', s) AS not_core,
	   scoring.condition_matches('{"features.consumables": true}', s) AS consumables
  FROM t_lead l
  LEFT JOIN t_client c USING (client_id)
  CROSS JOIN LATERAL (SELECT to_jsonb(l) || jsonb_build_object('client', to_jsonb(c))) AS x(s)
 ORDER BY l.lead_id;

--
-- Malformed conditions: each fails saying what is wrong and where
--
-- not an object
SELECT scoring.condition_valid('[]');
SELECT scoring.condition_valid('[{"shop": "weld.ru"}]');
SELECT scoring.condition_valid('"shop"');
SELECT scoring.condition_valid('42');
SELECT scoring.condition_valid('null');
-- unknown keys
SELECT scoring.condition_valid('{"shopp": "weld.ru"}');
SELECT scoring.condition_valid('{"client.name": "Acme"}');
SELECT scoring.condition_valid('{"features.": 1}');
SELECT scoring.condition_valid('{"features": {"colour": "red"}}');
SELECT scoring.condition_valid('{"any": [{"budget": {"lt": 1}}, {"Budget": 1}]}');
-- operators
SELECT scoring.condition_valid('{"shop": {"like": "weld%"}}');
SELECT scoring.condition_valid('{"budget": {"lt": 1, "foo": 2}}');
SELECT scoring.condition_valid('{"shop": {}}');
SELECT scoring.condition_valid('{"shop": {"in": "weld.ru"}}');
SELECT scoring.condition_valid('{"shop": {"in": []}}');
SELECT scoring.condition_valid('{"shop": {"nin": {"a": 1}}}');
SELECT scoring.condition_valid('{"shop": {"in": ["a", null]}}');
SELECT scoring.condition_valid('{"shop": {"nin": ["a", ["b"]]}}');
SELECT scoring.condition_valid('{"budget": {"lt": "100000"}}');
SELECT scoring.condition_valid('{"budget": {"gte": true}}');
SELECT scoring.condition_valid('{"budget": {"lte": [1]}}');
SELECT scoring.condition_valid('{"budget": {"lt": 1, "gt": null}}');
SELECT scoring.condition_valid('{"shop": {"eq": null}}');
SELECT scoring.condition_valid('{"shop": {"eq": ["a"]}}');
SELECT scoring.condition_valid('{"shop": {"ne": {"x": 1}}}');
SELECT scoring.condition_valid('{"shop": {"exists": "yes"}}');
SELECT scoring.condition_valid('{"shop": {"exists": 1}}');
-- values
SELECT scoring.condition_valid('{"shop": null}');
SELECT scoring.condition_valid('{"shop": ["a", "b"]}');
-- any
SELECT scoring.condition_valid('{"any": []}');
SELECT scoring.condition_valid('{"any": {"shop": "x"}}');
SELECT scoring.condition_valid('{"any": "shop"}');
SELECT scoring.condition_valid('{"any": null}');
SELECT scoring.condition_valid('{"any": [{"shop": "x"}, "shop"]}');
SELECT scoring.condition_valid('{"any": [[{"shop": "x"}]]}');
SELECT scoring.condition_valid('{"any": [{"shop": "x"}, {"any": [{"budget": {"lt": "x"}}]}]}');
-- limits: nesting, keys, list lengths
SELECT scoring.condition_valid((repeat('{"any": [', 33) || '{}' || repeat(']}', 33))::jsonb);
SELECT scoring.condition_valid((repeat('{"any": [', 1000) || '{}' || repeat(']}', 1000))::jsonb);
SELECT scoring.condition_valid(jsonb_object_agg('features.k' || i, i))
  FROM generate_series(1, 1001) AS i;
SELECT scoring.condition_valid(jsonb_build_object('any', jsonb_agg('{}'::jsonb)))
  FROM generate_series(1, 1001) AS i;
SELECT scoring.condition_valid(jsonb_build_object('shop', jsonb_build_object('in', jsonb_agg(i))))
  FROM generate_series(1, 10001) AS i;
-- condition_matches checks the condition too, and wants an object subject
SELECT scoring.condition_matches('{"shop": {"in": "weld.ru"}}', :'subj');
SELECT scoring.condition_matches('{}', '[]');
SELECT scoring.condition_matches('{}', '"weld.ru"');

--
-- refusal_rule checks its condition when a rule is stored
--
INSERT INTO scoring.refusal_rule (name, condition)
	VALUES ('bad', '{"budget": {"lt": "5000"}}');
INSERT INTO scoring.refusal_rule (name, condition)
	VALUES ('bad', '{"any": [{"client.kind": "person"}, {"chanel": "email"}]}');
INSERT INTO scoring.refusal_rule (name, condition, description)
	VALUES ('small_person', '{"client.kind": "person", "budget": {"lt": 5000}}',
			'private persons asking for less than 5,000 RUB');
UPDATE scoring.refusal_rule SET condition = '{"budget": null}'
 WHERE name = 'small_person';
SELECT name, condition, active FROM scoring.refusal_rule ORDER BY name;
DELETE FROM scoring.refusal_rule;
