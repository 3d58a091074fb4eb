--
-- Active sales: company claims and the free pool (SPEC §4, §6).
-- refresh_pool() and its rule, the free_companies view, touches that claim
-- and extend, claim() and its errors, release(), transfer(),
-- release_stale_claims(), the claim cap, the cool-down, schedule_jobs()
-- without pg_cron.
--
-- Every function is given its `now` / every touch its `at`: nothing here
-- depends on the clock, except refresh_pool() which has no `now` argument
-- and counts won profit of the last 12 months from now(); its leads are
-- dated relative to now() so that the output stays the same.
--
-- Time line (UTC): the company claims happen in January..May 2026; the
-- default settings are claim_period '2 months', claim_cooldown '14 days',
-- claim_touch_kinds call_connected/meeting/email_in, max_claims null.
--
-- Errors are shown tersely, each followed by its SQLSTATE.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY terse
SET client_min_messages = warning;
TRUNCATE scoring.touch, scoring.claim, scoring.claim_history, scoring.lead,
	scoring.client, scoring.model, scoring.brand, scoring.priority_band,
	scoring.refusal_rule, scoring.setting, scoring.manager, scoring.route,
	scoring.assignment_log
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

-- a hand-made model: p_win 0.5 for every lead, so a lead's expected profit
-- is 0.5 x budget x 0.2 = budget / 10
INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');

INSERT INTO scoring.manager (manager_id, login, full_name, tier) VALUES
	(1, 'm_a', 'Manager A', 'junior'),
	(2, 'm_b', 'Manager B', 'middle'),
	(3, 'm_c', 'Manager C', 'senior'),
	(4, 'gleb', 'Gleb', 'junior');

-- what the claim tables hold
CREATE TEMP VIEW claims AS
SELECT client_id AS company, manager_id AS mgr, claimed_at, last_touch_at, expires_at
  FROM scoring.claim ORDER BY client_id;
CREATE TEMP VIEW history AS
SELECT client_id AS company, manager_id AS mgr, claimed_at, released_at, reason
  FROM scoring.claim_history ORDER BY client_id, claimed_at, released_at;

--
-- The free pool: refresh_pool() by segment win rate, past wins, turnover;
-- persons never.
--
-- segment welding/core: companies 101..103 and 111..118, 2 won of 4 (0.5)
-- segment generators/non-core: 104 won 1, 105 lost 6: 1 of 7 (0.143)
-- 106 is a person who won; 107 is in a segment without closed leads
--
INSERT INTO scoring.client (client_id, kind, name, industry, core_industry, annual_turnover)
VALUES
	(101, 'company', 'Svarka', 'welding', true, 5000000),
	(102, 'company', 'Svarka-2', 'welding', true, NULL),
	(103, 'company', 'Tiny Weld', 'welding', true, 100000),
	(104, 'company', 'GenCo', 'generators', false, 5000000),
	(105, 'company', 'GenCo-2', 'generators', false, 5000000),
	(106, 'person', 'Private buyer', 'welding', true, NULL),
	(107, 'company', 'Pumps Ltd', 'pumps', false, 5000000);
INSERT INTO scoring.client (client_id, kind, name, industry, core_industry, annual_turnover)
SELECT i, 'company', 'Weld ' || i, 'welding', true, 2000000
  FROM generate_series(111, 118) AS i;

INSERT INTO scoring.lead (client_id, created_at, shop, brand, budget, status, won_profit, closed_at)
VALUES
	-- 101: won 50000 a month ago, won 20000 13 months ago (a past win, but
	-- not in the 12 months of potential), lost once
	(101, now() - interval '2 months', 'shop1', 'Fubag', 250000, 'won', 50000, now() - interval '1 month'),
	(101, now() - interval '14 months', 'shop1', 'Fubag', 100000, 'won', 20000, now() - interval '13 months'),
	(101, now() - interval '3 months', 'shop1', 'Fubag', 100000, 'lost', NULL, now() - interval '2 months'),
	(103, now() - interval '3 months', 'shop1', 'Fubag', 100000, 'lost', NULL, now() - interval '2 months'),
	(104, now() - interval '3 months', 'shop1', 'Fubag', 150000, 'won', 30000, now() - interval '2 months'),
	(106, now() - interval '3 months', 'shop1', 'Fubag', 900000, 'won', 90000, now() - interval '2 months');
INSERT INTO scoring.lead (client_id, created_at, shop, brand, budget, status, closed_at)
SELECT 105, now() - interval '3 months', 'shop1', 'Fubag', 10000, 'lost', now() - interval '2 months'
  FROM generate_series(1, 6);
-- open leads count with their expected profit: 101 +10000, 105 +5000
INSERT INTO scoring.lead (client_id, created_at, shop, brand, budget, status)
VALUES (101, now() - interval '1 day', 'shop1', 'Fubag', 100000, 'draft'),
	   (105, now() - interval '1 day', 'shop1', 'Fubag', 50000, 'draft');
SELECT client_id, status, expected_profit FROM scoring.lead
 WHERE status = 'draft' ORDER BY client_id;

-- the default rule {"min_segment_win_rate": 0.15, "min_turnover": 0}:
-- 101..104 and 111..118 (12); 105's segment wins too rarely, 106 is a
-- person, 107's segment has no history
SELECT scoring.refresh_pool() AS eligible;
SELECT client_id, kind, pool_eligible, potential FROM scoring.client
 WHERE client_id < 110 ORDER BY client_id;
SELECT count(*) AS eligible_11x, min(potential) AS min_potential, max(potential) AS max_potential
  FROM scoring.client WHERE client_id > 110 AND pool_eligible;

-- a turnover floor: 103 (100000) goes, 102 (turnover unknown) stays, and
-- 104, a past winner, goes when the floor is above its turnover
SELECT scoring.refresh_pool('{"min_segment_win_rate": 0.15, "min_turnover": 1000000}') AS eligible;
SELECT array_agg(client_id ORDER BY client_id) AS pool FROM scoring.client
 WHERE pool_eligible AND client_id < 110;
SELECT scoring.refresh_pool('{"min_segment_win_rate": 0.15, "min_turnover": 10000000}') AS eligible;
SELECT array_agg(client_id ORDER BY client_id) AS pool FROM scoring.client
 WHERE pool_eligible AND client_id < 110;
-- a lower win rate brings in 105's segment; the person never comes in
SELECT scoring.refresh_pool('{"min_segment_win_rate": 0.1}') AS eligible;
SELECT array_agg(client_id ORDER BY client_id) AS pool FROM scoring.client
 WHERE pool_eligible AND client_id < 110;
-- the rule used last is kept in the setting pool_rule
SELECT value FROM scoring.settings WHERE name = 'pool_rule';
-- a rule that is not an object: an error, and nothing changes
SELECT scoring.refresh_pool('[0.15]');
\echo :LAST_ERROR_SQLSTATE
SELECT value FROM scoring.settings WHERE name = 'pool_rule';
-- back to the default rule
SELECT scoring.refresh_pool('{"min_segment_win_rate": 0.15, "min_turnover": 0}') AS eligible;

-- free_companies: its columns, and its order (potential first, then id)
SELECT attnum, attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute
 WHERE attrelid = 'scoring.free_companies'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT * FROM scoring.free_companies;

--
-- Touches: a connected call on a free eligible company claims it
--
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-01-10 10:00+00', 'call_connected');
SELECT * FROM claims;
-- it is no longer free
SELECT count(*) AS listed FROM scoring.free_companies WHERE client_id = 101;

-- a missed call and an outgoing e-mail by the owner do not extend
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-01-20 10:00+00', 'call_missed');
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-01-25 10:00+00', 'email_out');
SELECT * FROM claims;

-- an incoming e-mail, a meeting, a connected call by the owner extend to
-- two months after the latest touch
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-02-01 09:00+00', 'email_in');
SELECT * FROM claims;
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-02-10 15:30+00', 'meeting');
SELECT * FROM claims;
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-02-20 11:00+00', 'call_connected');
SELECT * FROM claims;

-- touches that arrive late (older than the latest one) do not shorten,
-- one at a time or several in one statement
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-02-15 10:00+00', 'email_in');
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-02-19 10:00+00', 'meeting'),
	   (101, 1, '2026-01-05 10:00+00', 'call_connected');
SELECT * FROM claims;

-- touches by other managers (or by nobody) are recorded and claim nothing
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 2, '2026-03-01 10:00+00', 'call_connected'),
	   (101, 2, '2026-03-02 10:00+00', 'meeting'),
	   (101, 3, '2026-03-03 10:00+00', 'email_in'),
	   (101, NULL, '2026-03-04 10:00+00', 'email_in');
SELECT * FROM claims;
SELECT manager_id, count(*) AS touches, max(at) AS latest
  FROM scoring.touch WHERE client_id = 101
 GROUP BY manager_id ORDER BY manager_id;

-- on a free company only a connected call claims; on a company outside
-- the pool (105), a person (106) or one nobody chose (107) nothing does
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (102, 2, '2026-01-11 10:00+00', 'call_missed'),
	   (102, 2, '2026-01-12 10:00+00', 'email_out'),
	   (102, 2, '2026-01-13 10:00+00', 'email_in'),
	   (102, 2, '2026-01-14 10:00+00', 'meeting'),
	   (105, 2, '2026-01-15 10:00+00', 'call_connected'),
	   (106, 2, '2026-01-15 10:00+00', 'call_connected'),
	   (107, 2, '2026-01-15 10:00+00', 'call_connected'),
	   (118, 3, '2026-01-15 10:00+00', 'call_missed'),
	   (118, 4, '2026-01-15 11:00+00', 'email_out');
SELECT * FROM claims;
SELECT count(*) AS touches_recorded FROM scoring.touch WHERE client_id IN (102, 105, 106, 107, 118);
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (102, 2, '2026-01-16 10:00+00', 'call_connected');
SELECT * FROM claims;
-- free_companies shows the latest touch of a free company
SELECT client_id, last_owner, last_touch_at FROM scoring.free_companies
 WHERE client_id IN (101, 102, 103, 104, 118);

-- a touch by a manager that does not exist is refused
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (103, 99, '2026-01-16 10:00+00', 'call_connected');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS touches_of_103 FROM scoring.touch WHERE client_id = 103;

--
-- claim()
--
-- owned by another manager: SC007 naming the owner and the expiry
SELECT scoring.claim(101, 2, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.claim(102, 1, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
-- not in the free pool (outside the pool, a person, no such company): SC006
SELECT scoring.claim(105, 2, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.claim(106, 2, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.claim(999, 2, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
-- an unknown manager: SC004
SELECT scoring.claim(103, 99, '2026-03-05 10:00+00');
\echo :LAST_ERROR_SQLSTATE
-- none of them changed anything
SELECT * FROM claims;
SELECT count(*) AS history_rows FROM scoring.claim_history;

-- the owner claiming again gets the same expiry, and nothing changes
CREATE TEMP TABLE before AS SELECT * FROM scoring.claim;
SELECT scoring.claim(101, 1, '2026-03-05 10:00+00') AS expires_at;
SELECT scoring.claim(101, 1, '2026-01-11 10:00+00') AS expires_at;
SELECT count(*) AS changed_rows FROM (
	(SELECT * FROM scoring.claim EXCEPT SELECT * FROM before)
	UNION ALL
	(SELECT * FROM before EXCEPT SELECT * FROM scoring.claim)) AS d;
DROP TABLE before;

-- a free company: claimed for two months from now
SELECT scoring.claim(103, 3, '2026-03-01 12:00+00') AS expires_at;
SELECT * FROM claims WHERE company = 103;

--
-- release() and transfer() write claim_history
--
SELECT scoring.release(103, '2026-03-02 08:00+00') AS released;
SELECT * FROM history;
SELECT * FROM claims WHERE company = 103;
SELECT client_id, last_owner, last_released_at FROM scoring.free_companies
 WHERE client_id = 103;
-- release() of a company nobody owns returns false
SELECT scoring.release(103, '2026-03-02 09:00+00') AS released;
SELECT count(*) AS history_rows FROM scoring.claim_history;
-- a release by the head of sales starts no cool-down: manager C may claim again
SELECT scoring.claim(103, 3, '2026-03-02 10:00+00') AS expires_at;

-- transfer: the old owner goes to the history, the new one gets two months
SELECT scoring.transfer(103, 2, '2026-03-03 12:00+00') AS expires_at;
SELECT * FROM claims WHERE company = 103;
SELECT * FROM history;
-- to an unknown manager: SC004, nothing changes
SELECT scoring.transfer(103, 99, '2026-03-04 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM claims WHERE company = 103;
SELECT count(*) AS history_rows FROM scoring.claim_history;
-- a free company: given without a history row
SELECT scoring.transfer(104, 1, '2026-03-04 12:00+00') AS expires_at;
SELECT * FROM claims;
SELECT count(*) AS history_rows FROM scoring.claim_history;

--
-- release_stale_claims(now)
--
-- claims on 111 (manager A, until 2026-03-01), 112 (manager B, until 03-15) and
-- 113 (manager C, until 04-01); the others last until 04-20 and later
SELECT scoring.claim(111, 1, '2026-01-01 00:00+00') AS expires_at;
SELECT scoring.claim(112, 2, '2026-01-15 00:00+00') AS expires_at;
SELECT scoring.claim(113, 3, '2026-02-01 00:00+00') AS expires_at;
-- one second before the first expiry: nothing to do
SELECT scoring.release_stale_claims('2026-02-28 23:59:59+00') AS released;
-- at the expiry the claim is over
SELECT scoring.release_stale_claims('2026-03-01 00:00+00') AS released;
SELECT scoring.release_stale_claims('2026-03-01 00:00+00') AS released;
SELECT * FROM history WHERE reason = 'expired';
-- a month later: exactly the three that expired since (102 until 03-16
-- 10:00, 112, 113); the history dates each release at the claim's expiry
SELECT scoring.release_stale_claims('2026-04-05 00:00+00') AS released;
SELECT scoring.release_stale_claims('2026-04-05 00:00+00') AS released;
SELECT * FROM history WHERE reason = 'expired';
SELECT * FROM claims;
-- each stale claim is in the history exactly once
SELECT company, count(*) AS times FROM history WHERE reason = 'expired'
 GROUP BY company HAVING count(*) > 1;
SELECT array_agg(client_id ORDER BY client_id) AS free_11x FROM scoring.free_companies
 WHERE client_id BETWEEN 111 AND 113;

--
-- The cool-down: a manager who let a claim expire waits claim_cooldown
-- (14 days from the expiry) before claiming that company again
--
SELECT scoring.claim(111, 1, '2026-03-10 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.claim(111, 1, '2026-03-14 23:59:59+00');
\echo :LAST_ERROR_SQLSTATE
-- a connected call in the cool-down is recorded and claims nothing
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (111, 1, '2026-03-12 10:00+00', 'call_connected');
SELECT count(*) AS touches, (SELECT count(*) FROM scoring.claim WHERE client_id = 111) AS claims
  FROM scoring.touch WHERE client_id = 111;
-- from the end of the cool-down on, allowed
SELECT scoring.claim(111, 1, '2026-03-15 00:00+00') AS expires_at;
-- manager C let 113 go on 04-01: she waits until 04-15, others need not
SELECT scoring.claim(113, 3, '2026-04-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.claim(113, 4, '2026-04-06 00:00+00') AS expires_at;
-- a connected call after the cool-down claims again: manager B on 112
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (112, 2, '2026-04-06 10:00+00', 'call_connected');
SELECT * FROM claims WHERE company IN (111, 112, 113);

--
-- The cap: max_claims companies per manager
--
INSERT INTO scoring.setting (name, value) VALUES ('max_claims', '2');
SELECT manager_id, count(*) AS held FROM scoring.claim GROUP BY manager_id ORDER BY manager_id;
-- Gleb holds 1 (113): one more, then SC008
SELECT scoring.claim(114, 4, '2026-04-07 00:00+00') AS expires_at;
SELECT scoring.claim(115, 4, '2026-04-07 00:00+00');
\echo :LAST_ERROR_SQLSTATE
-- a connected call at the cap is recorded and claims nothing
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (115, 4, '2026-04-07 10:00+00', 'call_connected');
SELECT count(*) AS touches, (SELECT count(*) FROM scoring.claim WHERE client_id = 115) AS claims
  FROM scoring.touch WHERE client_id = 115;
-- the owner claiming again at the cap is no error
SELECT scoring.claim(114, 4, '2026-04-07 00:00+00') AS expires_at;
-- managers above a cap set later keep their claims but get no more
SELECT scoring.claim(115, 1, '2026-04-07 00:00+00');
\echo :LAST_ERROR_SQLSTATE
-- below the cap again after a release
SELECT scoring.release(114, '2026-04-08 00:00+00') AS released;
SELECT scoring.claim(115, 4, '2026-04-08 00:00+00') AS expires_at;
-- a cap of 0: nobody claims
UPDATE scoring.setting SET value = '0' WHERE name = 'max_claims';
SELECT scoring.claim(116, 3, '2026-04-08 00:00+00');
\echo :LAST_ERROR_SQLSTATE
-- max_claims 2.0 is a whole number: it caps at 2 like max_claims 2, and a
-- connected call beyond the cap is recorded, claiming nothing
UPDATE scoring.setting SET value = '2.0' WHERE name = 'max_claims';
SELECT value FROM scoring.settings WHERE name = 'max_claims';
SELECT scoring.claim(116, 3, '2026-04-08 00:00+00') AS expires_at;
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (117, 3, '2026-04-08 10:00+00', 'call_connected');
SELECT count(*) AS touches_of_117 FROM scoring.touch WHERE client_id = 117;
SELECT company, mgr, expires_at FROM claims WHERE company IN (116, 117);
-- (116 is free again from here on)
WITH d AS (DELETE FROM scoring.claim WHERE client_id = 116 RETURNING 1)
SELECT true AS cleaned FROM (SELECT count(*) FROM d) AS x;
-- no cap
DELETE FROM scoring.setting WHERE name = 'max_claims';
SELECT scoring.claim(117, 3, '2026-04-08 10:00+00') AS expires_at;

--
-- claim_touch_kinds decides which touches of the owner extend
--
INSERT INTO scoring.setting (name, value) VALUES ('claim_touch_kinds', '["email_out"]');
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-03-10 10:00+00', 'meeting');
SELECT company, last_touch_at, expires_at FROM claims WHERE company = 101;
INSERT INTO scoring.touch (client_id, manager_id, at, kind)
VALUES (101, 1, '2026-03-11 10:00+00', 'email_out');
SELECT company, last_touch_at, expires_at FROM claims WHERE company = 101;
DELETE FROM scoring.setting WHERE name = 'claim_touch_kinds';

--
-- free_companies at the end: unclaimed pool companies, best first, with
-- their last owner and latest touch
--
SELECT * FROM scoring.free_companies;
SELECT * FROM history;

--
-- schedule_jobs() without pg_cron in this database: a notice per job,
-- nothing scheduled, no rows
--
SET client_min_messages = notice;
SELECT * FROM scoring.schedule_jobs();
RESET client_min_messages;
