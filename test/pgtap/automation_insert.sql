--
-- test/pgtap/automation_insert.sql
--	Leads inserted refused or handed to automation ('auto') start their
--	chain (SPEC §3, §6) through one statement trigger that reads the
--	statement's new rows: only those rows, each once, in the order they
--	were inserted, whatever the way in (VALUES lists, INSERT ... SELECT,
--	COPY, ON CONFLICT); never a priority-1 lead, an unsubscribed client or
--	a row that was not inserted.
--
--	Priorities come from a hand-written model (p_win = 0.5 for every
--	lead): Fubag (margin 0.2) 50000 has expected profit 5000, priority 2;
--	Kemppi (margin 1) 100000 has 50000, priority 1; Fubag 100 is below
--	every band: priority 5, and a 'new' lead of priority 5 goes to
--	automation.
--
BEGIN;
SELECT plan(12);

SET LOCAL timezone = 'UTC';
SET LOCAL scoring.now = '2026-03-02 10:00+00';

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2), ('Kemppi', 1.0);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won, intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.client (client_id, name, unsubscribed)
SELECT i, 'client ' || i, i = 9 FROM generate_series(1, 9) AS i;
INSERT INTO scoring.sequence (name, steps) VALUES
('price', '[{"delay": "0", "subject": "p", "body": "b"}]'),
('stock', '[{"delay": "0", "subject": "s", "body": "b"}]'),
('decline', '[{"delay": "0", "subject": "d", "body": "b"}]');
INSERT INTO scoring.refusal_reason (reason, sequence) VALUES
('price_too_high', 'price'), ('out_of_stock', 'stock'), ('no_chain', NULL);
INSERT INTO scoring.setting (name, value) VALUES ('auto_sequence', '"decline"');

-- the chains started, as "lead:sequence", in the order they were started
CREATE FUNCTION pg_temp.started() RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(lead_id || ':' || sequence, ' ' ORDER BY enrollment_id), '')
	  FROM scoring.enrollment
$$;

-- one statement, six rows: two refused with a chain, one refused without
-- one, one of an unsubscribed client, one priority 1, one accepted
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason)
VALUES (6, '2026-03-01 12:00+00', 1, 'Fubag', 50000, 'refused', 'out_of_stock'),
	   (2, '2026-03-01 12:00+00', 2, 'Fubag', 50000, 'accepted', NULL),
	   (3, '2026-03-01 12:00+00', 3, 'Fubag', 50000, 'refused', 'no_chain'),
	   (4, '2026-03-01 12:00+00', 9, 'Fubag', 50000, 'refused', 'price_too_high'),
	   (5, '2026-03-01 12:00+00', 5, 'Kemppi', 100000, 'refused', 'price_too_high'),
	   (1, '2026-03-01 12:00+00', 1, 'Fubag', 50000, 'refused', 'price_too_high');
SELECT is(pg_temp.started(), '6:stock 1:price',
		  'a multi-row insert starts the chains of its refused rows, in their order');

-- a 'new' lead below every band is handed to automation on insert
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget)
VALUES (7, '2026-03-01 12:00+00', 7, 'Fubag', 100);
SELECT is((SELECT status FROM scoring.lead WHERE lead_id = 7), 'auto',
		  'a priority-5 lead goes to automation');
SELECT is(pg_temp.started(), '6:stock 1:price 7:decline',
		  'and gets the auto_sequence chain');

-- INSERT ... SELECT of many rows: each refused one once
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason)
SELECT 100 + i, '2026-03-01 12:00+00', 1 + i % 8, 'Fubag', 50000,
	   CASE WHEN i % 3 = 0 THEN 'refused' ELSE 'accepted' END, 'out_of_stock'
  FROM generate_series(1, 300) AS i;
SELECT is((SELECT count(*) FROM scoring.enrollment WHERE lead_id > 100), 100::bigint,
		  'INSERT ... SELECT: the 100 refused rows of 300, each enrolled once');
SELECT is((SELECT count(*) FROM scoring.enrollment e JOIN scoring.lead l USING (lead_id)
			WHERE l.status NOT IN ('refused', 'auto')), 0::bigint,
		  'no lead inserted accepted is enrolled');

-- ON CONFLICT DO NOTHING: the row that was not inserted starts nothing
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason)
VALUES (2, '2026-03-01 12:00+00', 2, 'Fubag', 50000, 'refused', 'price_too_high'),
	   (8, '2026-03-01 12:00+00', 8, 'Fubag', 50000, 'refused', 'price_too_high')
ON CONFLICT (lead_id) DO NOTHING;
SELECT is((SELECT string_agg(lead_id::text, ' ' ORDER BY lead_id) FROM scoring.enrollment
			WHERE lead_id < 100), '1 6 7 8',
		  'ON CONFLICT DO NOTHING: only the inserted row is enrolled');

-- ON CONFLICT DO UPDATE to refused: the update trigger starts the chain
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason)
VALUES (2, '2026-03-01 12:00+00', 2, 'Fubag', 50000, 'refused', 'price_too_high')
ON CONFLICT (lead_id) DO UPDATE SET status = excluded.status,
	refusal_reason = excluded.refusal_reason;
SELECT is((SELECT sequence FROM scoring.enrollment WHERE lead_id = 2), 'price',
		  'ON CONFLICT DO UPDATE to refused: the reason''s chain');
SELECT is((SELECT count(*) FROM scoring.enrollment WHERE lead_id = 2), 1::bigint,
		  'started once');

-- COPY goes through the same trigger
COPY scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason) FROM STDIN;
10	2026-03-01 12:00+00	4	Fubag	50000	refused	out_of_stock
11	2026-03-01 12:00+00	4	Fubag	50000	accepted	\N
\.
SELECT is((SELECT string_agg(lead_id || ':' || sequence, ' ') FROM scoring.enrollment
			WHERE lead_id IN (10, 11)), '10:stock',
		  'COPY: the refused row is enrolled');

-- a rolled-back subtransaction leaves no chain behind
SAVEPOINT s;
INSERT INTO scoring.lead (lead_id, created_at, client_id, brand, budget, status, refusal_reason)
VALUES (12, '2026-03-01 12:00+00', 4, 'Fubag', 50000, 'refused', 'out_of_stock');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM scoring.enrollment WHERE lead_id = 12), 0::bigint,
		  'a rolled-back insert leaves no enrollment');

-- the trigger function checks how it is fired
CREATE TABLE pg_temp.t (LIKE scoring.lead INCLUDING DEFAULTS);
CREATE TRIGGER t_row AFTER INSERT ON pg_temp.t
	FOR EACH ROW EXECUTE FUNCTION scoring.lead_automation_inserted();
SELECT throws_ok($$INSERT INTO pg_temp.t (lead_id, created_at, status) VALUES (1, now(), 'refused')$$,
				 '39P01', NULL, 'fired for each row: a trigger protocol error');
DROP TRIGGER t_row ON pg_temp.t;
CREATE TRIGGER t_stmt AFTER INSERT ON pg_temp.t
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_automation_inserted();
SELECT throws_ok($$INSERT INTO pg_temp.t (lead_id, created_at, status) VALUES (1, now(), 'refused')$$,
				 '39P01', NULL, 'without its transition table: a trigger protocol error');

SELECT * FROM finish();
ROLLBACK;
