--
-- Message templates: scoring.render(template, context) and
-- scoring.template_valid(template) (SPEC §3, src/render.c)
--
--   {{path.to.value}}        the value at a path; {{items.0.name}} indexes
--                            arrays; nothing when absent
--   {{#name}}..{{/name}}     once per element of an array (the element is
--                            looked up first), once for any other true value
--   {{^name}}..{{/name}}     when absent, false, null or an empty array
--   {{.}}                    the current element
--
-- A malformed template fails with SQLSTATE 22023 and the character position
-- of the problem; sections nest at most 16 deep; a rendered message is at
-- most 10 MB (10485760 bytes), beyond that SQLSTATE 54000.
--
-- Each table lists the template, the result the specification asks for
-- (want) and the result (got); the two columns must agree on every row.
-- pg_temp.r() renders, or returns the error as
-- "ERROR sqlstate: message | detail" so that errors fit in a table.
--
\set VERBOSITY default
\set SHOW_CONTEXT never
\pset null '(null)'

CREATE FUNCTION pg_temp.r(template text, context jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	RETURN scoring.render(template, context);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL;
	RETURN format('ERROR %s: %s | %s', st, msg, det);
END;
$$;

-- the context most rows use: what scoring.lead_context() gives a template
\set ctx '{"client": {"name": "ООО «Сварка»", "kind": "company"}, "lead": {"category": "welding", "brand": "Fubag", "budget": 150000.50, "priority": 3, "urgent": true, "draft": false, "note": null}, "manager": {"full_name": "Менеджер Один"}, "purchases": [{"date": "2025-03-01", "category": "electrodes", "brand": "ESAB", "budget": 12000, "items": ["rod 3mm", "rod 4mm"]}, {"date": "2024-11-20", "category": "masks", "brand": null, "budget": 3500, "items": []}], "tags": ["a", "b", "c"], "matrix": [[1, 2], [3, 4]], "empty": [], "zero": 0, "blank": "", "emptyobj": {}, "brand": "TOP", "discount": "5%", "big": 1e30, "neg": -0.5, "nested": {"deep": {"er": {"value": "found"}}}, "ключ": "значение", "a-b_c": "dash", "tricky": "{{lead.brand}} <b>&amp;</b>"}'

--
-- 1. Values: paths, array indexes, every JSON type, missing values
--
SELECT t AS template, want, pg_temp.r(t, :'ctx') AS got
  FROM (VALUES
	('plain text, no tags', 'plain text, no tags'),
	('', ''),
	('Hello, {{client.name}}!', 'Hello, ООО «Сварка»!'),
	('{{ client.name }}|{{client.name }}|{{  client.name}}', 'ООО «Сварка»|ООО «Сварка»|ООО «Сварка»'),
	('{{nested.deep.er.value}}', 'found'),
	('[{{missing}}][{{client.missing}}][{{missing.deep.path}}][{{lead.category.x}}]', '[][][][]'),
	('{{lead.budget}} {{lead.priority}} {{zero}} {{big}} {{neg}}', '150000.50 3 0 1000000000000000000000000000000 -0.5'),
	('{{lead.urgent}}/{{lead.draft}}/{{lead.note}}/{{blank}}.', 'true/false//.'),
	('{{emptyobj}} {{nested.deep}} {{tags}} {{empty}} {{matrix}}', '{} {"er": {"value": "found"}} ["a", "b", "c"] [] [[1, 2], [3, 4]]'),
	('{{purchases.0.category}}, {{purchases.1.budget}}, [{{purchases.2.category}}]', 'electrodes, 3500, []'),
	('{{purchases.0.items.1}} {{matrix.1.0}} {{tags.2}}', 'rod 4mm 3 c'),
	('[{{tags.-1}}][{{tags.3}}][{{tags.x}}][{{tags.99999999999}}][{{lead.0}}]', '[][][][][]'),
	('{{ключ}} {{a-b_c}}', 'значение dash'),
	-- a value is never rendered again, and nothing is escaped
	('{{tricky}}', '{{lead.brand}} <b>&amp;</b>'),
	('Сварка ✓ {{lead.brand}} 🔥', 'Сварка ✓ Fubag 🔥'),
	(E'line 1\n\tline {{lead.priority}}\n', E'line 1\n\tline 3\n'),
	('a { b } c }} d {x} {{lead.brand}}}', 'a { b } c }} d {x} Fubag}')
  ) AS v(t, want);

--
-- 2. Sections: arrays (of scalars, of objects, of arrays), objects, true
-- values, nesting, {{.}}, lookups that fall back to the enclosing scopes
--
SELECT t AS template, want, pg_temp.r(t, :'ctx') AS got
  FROM (VALUES
	('{{#tags}}<{{.}}>{{/tags}}', '<a><b><c>'),
	('{{# tags }}<{{ . }}>{{/ tags }}', '<a><b><c>'),
	('{{#purchases}}{{date}}: {{category}} ({{#brand}}{{brand}}{{/brand}}{{^brand}}no brand{{/brand}}), {{budget}} RUB; {{/purchases}}',
	 '2025-03-01: electrodes (ESAB), 12000 RUB; 2024-11-20: masks (no brand), 3500 RUB; '),
	('{{#purchases}}[{{#items}}{{.}},{{/items}}{{^items}}none{{/items}}]{{/purchases}}', '[rod 3mm,rod 4mm,][none]'),
	('{{#matrix}}({{#.}}{{.}}{{/.}}){{/matrix}}', '(12)(34)'),
	('{{#client}}{{name}} / {{kind}}{{/client}}', 'ООО «Сварка» / company'),
	('{{#client}}{{.}}{{/client}}', '{"kind": "company", "name": "ООО «Сварка»"}'),
	('{{#nested}}{{#deep}}{{#er}}{{value}}{{/er}}{{/deep}}{{/nested}}', 'found'),
	('{{#lead.brand}}[{{.}}]{{/lead.brand}}{{#lead.budget}}[{{.}}]{{/lead.budget}}{{#lead.urgent}}[{{.}}]{{/lead.urgent}}', '[Fubag][150000.50][true]'),
	-- 0, "" and {} are true values (only false, null and [] are not)
	('{{#zero}}0 {{/zero}}{{#blank}}"" {{/blank}}{{#emptyobj}}{} {{/emptyobj}}', '0 "" {} '),
	('{{#missing}}X{{/missing}}{{#lead.draft}}X{{/lead.draft}}{{#lead.note}}X{{/lead.note}}{{#empty}}X{{/empty}}', ''),
	-- names missing in the element are looked up outside it ...
	('{{#tags}}{{.}}={{lead.category}}{{discount}} {{/tags}}', 'a=welding5% b=welding5% c=welding5% '),
	('{{#purchases}}{{category}} for {{client.name}}; {{/purchases}}', 'electrodes for ООО «Сварка»; masks for ООО «Сварка»; '),
	-- ... but a name the element has wins, even when its value is null
	('{{#purchases}}[{{brand}}]{{/purchases}} {{brand}}', '[ESAB][] TOP'),
	-- the same array twice, and a section of the same name inside itself
	('{{#tags}}{{.}}{{/tags}}-{{#tags}}{{.}}{{/tags}}', 'abc-abc'),
	('{{#tags}}{{#tags}}{{.}}{{/tags}}|{{/tags}}', 'abc|abc|abc|'),
	-- the first purchase only, as the shipped signatures use it
	('{{#purchases.0}}Спасибо за {{purchases.0.category}}{{#purchases.0.brand}}, {{purchases.0.brand}}{{/purchases.0.brand}}.{{/purchases.0}}', 'Спасибо за electrodes, ESAB.'),
	('{{#purchases.1}}{{category}}{{#brand}}, {{brand}}{{/brand}}.{{/purchases.1}}', 'masks.'),
	('{{#purchases.2}}X{{/purchases.2}}{{^purchases.2}}no third purchase{{/purchases.2}}', 'no third purchase')
  ) AS v(t, want);

--
-- 3. Inverted sections: rendered for missing, false, null and [] only
--
SELECT t AS template, want, pg_temp.r(t, :'ctx') AS got
  FROM (VALUES
	('{{^missing}}A{{/missing}}{{^lead.draft}}B{{/lead.draft}}{{^lead.note}}C{{/lead.note}}{{^empty}}D{{/empty}}{{^client.missing.x}}E{{/client.missing.x}}', 'ABCDE'),
	('{{^tags}}X{{/tags}}{{^lead.urgent}}X{{/lead.urgent}}{{^zero}}X{{/zero}}{{^blank}}X{{/blank}}{{^emptyobj}}X{{/emptyobj}}{{^client}}X{{/client}}', ''),
	-- the inside of an inverted section sees the same scope as outside
	('{{^empty}}{{client.name}}, {{lead.brand}}{{/empty}}', 'ООО «Сварка», Fubag'),
	('{{#purchases}}{{^items}}{{category}} has no items{{/items}}{{/purchases}}', 'masks has no items'),
	('{{#manager}}{{manager.full_name}}{{/manager}}{{^manager}}отдел продаж{{/manager}}', 'Менеджер Один')
  ) AS v(t, want);

-- the shipped signature without a manager and without purchases
SELECT scoring.render(E'{{#purchases.0}}Спасибо, что покупали у нас.\n{{/purchases.0}}С уважением,\n{{#manager}}{{manager.full_name}}{{/manager}}{{^manager}}отдел продаж{{/manager}}',
					  '{"manager": null, "purchases": []}') AS signature;

--
-- 4. Contexts that are not objects: an array is indexed and iterated;
-- a scalar is the current element ({{.}}) and has no names
--
SELECT t AS template, ctx, want, pg_temp.r(t, ctx::jsonb) AS got
  FROM (VALUES
	('{{0}}|{{1.name}}|{{2}}|{{#.}}<{{.}}>{{/.}}', '["a", {"name": "y"}]', 'a|y||<a><{"name": "y"}>'),
	('{{^.}}empty{{/.}}{{#.}}X{{/.}}', '[]', 'empty'),
	('{{#.}}obj{{/.}}{{^.}}X{{/.}}', '{}', 'obj'),
	('{{#.}}{{a}}{{/.}}', '{"a": 1}', '1'),
	('{{.}}', '{"a": 1}', '{"a": 1}'),
	('{{.}}', '42', '42'),
	('{{.}}', '12.50', '12.50'),
	('[{{x}}][{{x.y}}]', '42', '[][]'),
	('{{#.}}T{{/.}}{{^.}}F{{/.}}', 'true', 'T'),
	-- a string context renders as it is (str), as every string value does
	('{{.}}', '"str"', 'str'),
	-- a string has no element 0: empty
	('[{{0}}]', '"str"', '[]'),
	-- a false or null context is false: {{^.}} renders, {{#.}} does not;
	-- a null context renders as nothing
	('{{#.}}T{{/.}}{{^.}}F{{/.}}', 'false', 'F'),
	('{{#.}}T{{/.}}{{^.}}F{{/.}}', 'null', 'F'),
	('[{{.}}]', 'null', '[]')
  ) AS v(t, ctx, want);

-- NULL in, NULL out (the function is strict)
SELECT scoring.render(NULL, '{}') AS null_template,
	   scoring.render('x', NULL) AS null_context;

--
-- 5. Malformed templates: SQLSTATE 22023, the problem and its character
-- position; nothing is rendered, even when the bad part would be skipped
--
SELECT t AS template, want, pg_temp.r(t, :'ctx') AS got
  FROM (VALUES
	-- a tag that is not closed
	('Hi {{name', 'ERROR 22023: malformed template: a tag is not closed with }} | At character 4.'),
	('Hi {{name}', 'ERROR 22023: malformed template: a tag is not closed with }} | At character 4.'),
	('a }} b {{', 'ERROR 22023: malformed template: a tag is not closed with }} | At character 8.'),
	('{{lead.brand}} {{', 'ERROR 22023: malformed template: a tag is not closed with }} | At character 16.'),
	-- a section that is not closed
	('Hi {{#tags}}x', 'ERROR 22023: malformed template: section "tags" is never closed | At character 4.'),
	('{{#a}}{{#b}}x{{/b}}', 'ERROR 22023: malformed template: section "a" is never closed | At character 1.'),
	('{{^a}}', 'ERROR 22023: malformed template: section "a" is never closed | At character 1.'),
	-- a closing tag with no open section, or not the innermost one
	('x {{/a}}', 'ERROR 22023: malformed template: {{/a}} closes no open section | At character 3.'),
	('{{#a}}x{{/a}}{{/a}}', 'ERROR 22023: malformed template: {{/a}} closes no open section | At character 14.'),
	('{{#a}}x{{/b}}', 'ERROR 22023: malformed template: {{/b}} closes no open section | At character 8.'),
	('{{^a}}x{{/b}}', 'ERROR 22023: malformed template: {{/b}} closes no open section | At character 8.'),
	('{{#a}}{{#b}}x{{/a}}{{/b}}', 'ERROR 22023: malformed template: {{/a}} closes no open section | At character 14.'),
	-- names that are not paths
	('{{a..b}}', 'ERROR 22023: malformed template: "{{a..b}}" is not a valid name | At character 1.'),
	('x{{}}', 'ERROR 22023: malformed template: "{{}}" is not a valid name | At character 2.'),
	('{{ }}', 'ERROR 22023: malformed template: "{{ }}" is not a valid name | At character 1.'),
	('{{.a}}', 'ERROR 22023: malformed template: "{{.a}}" is not a valid name | At character 1.'),
	('{{a.}}', 'ERROR 22023: malformed template: "{{a.}}" is not a valid name | At character 1.'),
	('{{..}}', 'ERROR 22023: malformed template: "{{..}}" is not a valid name | At character 1.'),
	('{{a b}}', 'ERROR 22023: malformed template: "{{a b}}" is not a valid name | At character 1.'),
	('{{#}}{{/}}', 'ERROR 22023: malformed template: "{{#}}" is not a valid name | At character 1.'),
	('{{#a}}{{/}}', 'ERROR 22023: malformed template: "{{/}}" is not a valid name | At character 7.'),
	('{{!comment}}', 'ERROR 22023: malformed template: "{{!comment}}" is not a valid name | At character 1.'),
	('{{{a}}}', 'ERROR 22023: malformed template: "{{{a}}" is not a valid name | At character 1.'),
	('{{>partial}}', 'ERROR 22023: malformed template: "{{>partial}}" is not a valid name | At character 1.'),
	('{{&a}}', 'ERROR 22023: malformed template: "{{&a}}" is not a valid name | At character 1.'),
	('{{a {{b}}', 'ERROR 22023: malformed template: "{{a {{b}}" is not a valid name | At character 1.'),
	('{{lead.brand}}{{#a b}}{{/a b}}', 'ERROR 22023: malformed template: "{{#a b}}" is not a valid name | At character 15.'),
	-- parsed before anything is rendered: a bad part inside a section that
	-- would be skipped is still an error
	('{{#missing}}{{a..b}}{{/missing}}', 'ERROR 22023: malformed template: "{{a..b}}" is not a valid name | At character 13.'),
	('{{^tags}}{{#x}}{{/tags}}', 'ERROR 22023: malformed template: {{/tags}} closes no open section | At character 16.'),
	-- the position counts characters, not bytes: "Привет " is 7
	-- characters (13 bytes in UTF-8), "€ " 2 characters (4 bytes)
	-- positions count characters, not bytes
	('Привет {{name', 'ERROR 22023: malformed template: a tag is not closed with }} | At character 8.'),
	('€ {{a..b}}', 'ERROR 22023: malformed template: "{{a..b}}" is not a valid name | At character 3.')
  ) AS v(t, want);

-- how the error is reported to a client: message, DETAIL with the position
SELECT scoring.render('Dear {{client.name}', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.render('{{#purchases}}{{category}}{{/purchase}}', '{}');

-- template_valid() (the check used when a sequence is stored) says the same
SELECT scoring.template_valid('{{#a}}{{b.0.c}}{{/a}}{{^a}}-{{/a}}') AS valid;
SELECT scoring.template_valid('{{#a}}{{/b}}');
\echo :LAST_ERROR_SQLSTATE

--
-- 6. Depth: sections nest at most 16 deep (inverted ones count too);
-- any number of sections one after another is fine
--
SELECT pg_temp.r(repeat('{{#a}}', 16) || 'x' || repeat('{{/a}}', 16), '{"a": true}') AS depth_16;
SELECT pg_temp.r(repeat('{{#a}}', 8) || repeat('{{^b}}', 8) || 'x' || repeat('{{/b}}', 8) || repeat('{{/a}}', 8),
				 '{"a": [1]}') AS depth_16_mixed;
-- 16 levels of real data: nested one-element arrays
SELECT pg_temp.r(repeat('{{#.}}', 16) || '{{.}}' || repeat('{{/.}}', 16),
				 (repeat('[', 15) || '"deep"' || repeat(']', 15))::jsonb) AS depth_16_arrays;
-- the 17th opening tag (character 97) is the problem
SELECT pg_temp.r(repeat('{{#a}}', 17) || 'x' || repeat('{{/a}}', 17), '{"a": true}') AS depth_17;
SELECT pg_temp.r(repeat('{{#a}}', 8) || repeat('{{^b}}', 9) || 'x' || repeat('{{/b}}', 9) || repeat('{{/a}}', 8),
				 '{"a": [1]}') AS depth_17_mixed;
-- very deep nesting fails the same way, without exhausting the stack
SELECT pg_temp.r(repeat('{{#a}}', 100000) || repeat('{{/a}}', 100000), '{}') AS depth_100000;
SELECT length(pg_temp.r(repeat('{{#a}}x{{/a}}', 10000), '{"a": true}')) AS sections_10000_in_a_row;

--
-- 7. Output size: at most 10485760 bytes; one byte more is SQLSTATE 54000
--
CREATE TEMP TABLE big AS
SELECT jsonb_build_object('a', jsonb_agg(i)) AS ctx
  FROM generate_series(1, 1048576) AS i;
-- 1048576 x 10 bytes = 10485760: exactly the limit
SELECT octet_length(scoring.render('{{#a}}0123456789{{/a}}', ctx)) AS exactly_10mb FROM big;
-- one byte more
SELECT length(scoring.render('{{#a}}0123456789{{/a}}x', ctx)) AS one_byte_more FROM big;
\echo :LAST_ERROR_SQLSTATE
-- one element more
SELECT length(scoring.render('{{#a}}0123456789{{/a}}',
							 jsonb_build_object('a', jsonb_agg(i))))
  FROM generate_series(1, 1048577) AS i;
\echo :LAST_ERROR_SQLSTATE
-- a single value at the limit, bigger than the limit, and two values that
-- together are
SELECT octet_length(scoring.render('{{s}}', jsonb_build_object('s', repeat('x', 10485760)))) AS one_value_10mb;
SELECT length(scoring.render('{{s}}', jsonb_build_object('s', repeat('x', 10485761)))) AS one_value;
\echo :LAST_ERROR_SQLSTATE
SELECT length(scoring.render('{{s}}{{s}}', jsonb_build_object('s', repeat('я', 2700000)))) AS two_values;
\echo :LAST_ERROR_SQLSTATE
-- a template that would produce 10 GB (1000 x 1000 x 1000 x 10 bytes)
-- stops at the limit instead of exhausting the server
SELECT length(scoring.render('{{#a}}{{#a}}{{#a}}0123456789{{/a}}{{/a}}{{/a}}',
							 jsonb_build_object('a', jsonb_agg(i))))
  FROM generate_series(1, 1000) AS i;
\echo :LAST_ERROR_SQLSTATE
