--
-- The lead trigger keeps each client's scoring attributes in a backend
-- copy (src/client_cache.c).  A lead must still be scored with its client
-- as it is now: after an update of any of the six columns the copy holds,
-- after a delete, after a rolled-back update or insert of the client's
-- (savepoints here; whole transactions in the isolation spec
-- client_cache), and when more clients pass than the copy keeps.
--
-- Refusal rules on client columns make what the trigger saw visible: a
-- lead whose client matches is refused (priority 5, flag refused:NAME).
--
-- Runs in a fresh database with pgtap and scoring; changes nothing (ROLLBACK).
--
BEGIN;
SELECT plan(16);

INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2);
INSERT INTO scoring.client (client_id, kind, industry, okved, core_industry,
							annual_turnover)
VALUES (1, 'company', 'production', '25.62', true, 1000);
INSERT INTO scoring.refusal_rule (name, condition) VALUES
	('person', '{"client.kind": "person"}'),
	('trade', '{"client.industry": "trade"}'),
	('okved', '{"client.okved": "47.11"}'),
	('noncore', '{"client.core_industry": false}'),
	('tiny', '{"client.annual_turnover": {"lt": 10}}');

-- Inserts a lead of a client and returns how the trigger saw the client
CREATE FUNCTION pg_temp.seen(client bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	INSERT INTO scoring.lead (client_id, status, brand, budget)
	VALUES (client, 'draft', 'B', 1000)
	RETURNING priority, array_to_string(score_flags, ',') AS flags INTO r;
	RETURN r.priority || ' ' || r.flags;
END;
$$;

SELECT is(pg_temp.seen(1), '2 no_active_model', 'the client as stored: nothing refused');
SELECT is(pg_temp.seen(1), '2 no_active_model', 'the same from the copy');

-- every column the copy holds: a change reaches the next lead
UPDATE scoring.client SET kind = 'person' WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '5 no_active_model,refused:person', 'kind changed');
UPDATE scoring.client SET kind = 'company', industry = 'trade' WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '5 no_active_model,refused:trade', 'industry changed');
UPDATE scoring.client SET industry = 'production', okved = '47.11' WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '5 no_active_model,refused:okved', 'okved changed');
UPDATE scoring.client SET okved = '25.62', core_industry = false WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '5 no_active_model,refused:noncore', 'core_industry changed');
UPDATE scoring.client SET core_industry = true, annual_turnover = 5 WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '5 no_active_model,refused:tiny', 'annual_turnover changed');
UPDATE scoring.client SET annual_turnover = 1000 WHERE client_id = 1;
SELECT is(pg_temp.seen(1), '2 no_active_model', 'all back');

-- a new id for the client: the old one is unknown, the new one known
UPDATE scoring.client SET client_id = 2 WHERE client_id = 1;
SELECT is(pg_temp.seen(1) || ' / ' || pg_temp.seen(2),
		  '2 unknown_client,no_active_model / 2 no_active_model',
		  'client_id changed');

-- a rolled-back update and a rolled-back insert leave nothing behind
SAVEPOINT s;
UPDATE scoring.client SET kind = 'person' WHERE client_id = 2;
SELECT is(pg_temp.seen(2), '5 no_active_model,refused:person', 'an update not committed yet counts here');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.seen(2), '2 no_active_model', 'rolled back: the client as it was');
SAVEPOINT s;
INSERT INTO scoring.client (client_id, kind) VALUES (3, 'person');
SELECT is(pg_temp.seen(3), '5 no_active_model,refused:person', 'a client inserted here counts here');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.seen(3), '2 unknown_client,no_active_model', 'rolled back: the client is not there');

-- a deleted client is unknown at once
DELETE FROM scoring.client WHERE client_id = 2;
SELECT is(pg_temp.seen(2), '2 unknown_client,no_active_model', 'a deleted client is unknown');

-- more clients than the copy keeps (16384), persons and companies, read
-- twice, the second time after every person became a company: every lead
-- of a person and only those refused the first time, none the second
INSERT INTO scoring.client (client_id, kind)
SELECT c, CASE WHEN c % 3 = 0 THEN 'person' ELSE 'company' END
  FROM generate_series(1001, 21000) AS c;
INSERT INTO scoring.lead (client_id, status, brand, budget, features)
SELECT c, 'draft', 'B', 1000, '{"round": 1}'
  FROM generate_series(1001, 21000) AS c;
UPDATE scoring.client SET kind = 'company' WHERE client_id > 1000 AND kind = 'person';
INSERT INTO scoring.lead (client_id, status, brand, budget, features)
SELECT c, 'draft', 'B', 1000, '{"round": 2}'
  FROM generate_series(21000, 1001, -1) AS c;
SELECT results_eq(
	$$SELECT features->>'round', count(*), count(*) FILTER (WHERE priority = 5),
			 count(*) FILTER (WHERE priority = 5 AND client_id % 3 <> 0)
		FROM scoring.lead WHERE client_id > 1000 GROUP BY 1 ORDER BY 1$$,
	$$VALUES ('1', 20000::bigint, 6667::bigint, 0::bigint), ('2', 20000, 0, 0)$$,
	'20,000 clients: the persons refused, then none');

-- logical replication's apply fires row triggers only
SELECT is((SELECT string_agg(tgname || ' ' || tgenabled::text || ' ' || (tgtype & 1 = 1), ', ' ORDER BY tgname)
			 FROM pg_trigger WHERE tgrelid = 'scoring.client'::regclass AND NOT tgisinternal),
		  'client_changed A true, client_deleted A true',
		  'the client triggers are row triggers enabled ALWAYS');

SELECT * FROM finish();
ROLLBACK;
