--
-- The views for BI (SPEC §5, §6; README "Numbers for the business"):
-- forecast_monthly, manager_plan, marketing_roi, work_queue,
-- model_quality, backtest() and grant_bi().
--
-- Every number below is checked by hand in the comments.  No model is
-- trained except in the backtest section: a model row written by hand
-- (intercept 0, no weights) gives every lead p_win = 0.5, so
--   brand B (margin 0.2): forecast = expected = 0.1 x budget
--   brand K (margin 1.0): forecast = expected = 0.5 x budget
-- (the model has no lifetime uplift, so expected_profit = forecast_profit
-- until a rescore), and the bands decide priorities on paper:
--   1 >= 40000, 2 >= 4000, 3 >= 400, 4 >= 40, below: 5
--
-- Months are taken in the session's time zone: Europe/Moscow (UTC+3) here.
--
SET TimeZone = 'Europe/Moscow';
SET DateStyle = 'ISO';
\set VERBOSITY terse
SET client_min_messages = warning;
TRUNCATE scoring.lead, scoring.client, scoring.model, scoring.brand,
	scoring.priority_band, scoring.refusal_rule, scoring.setting,
	scoring.manager, scoring.route, scoring.assignment_log,
	scoring.marketing_spend, scoring.bonus_scale
	RESTART IDENTITY CASCADE;
RESET client_min_messages;

INSERT INTO scoring.brand (brand, margin) VALUES ('B', 0.2), ('K', 1.0);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
-- model 1: p_win = 0.5 for every lead
INSERT INTO scoring.model (model_id, active, trained_at, train_since, train_until,
						   n_rows, n_won, intercept, weights)
VALUES (1, true, '2025-12-31 00:00+03', '2025-01-01 00:00+03', '2026-01-01 00:00+03',
		0, 0, 0, '{}');
-- models 1..3 are written here with their ids: train() numbers from 100
SELECT setval(pg_get_serial_sequence('scoring.model', 'model_id'), 99) AS model_seq;
-- one route to any tier, so that routing depends only on who is present
INSERT INTO scoring.route (position, condition, tier) VALUES (1, '{}', NULL);

-- Starts a section afresh: no leads, managers, spend or bonus scale
CREATE FUNCTION pg_temp.reset() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning
AS $$
BEGIN
	TRUNCATE scoring.lead, scoring.assignment_log, scoring.marketing_spend,
		scoring.bonus_scale CASCADE;
	DELETE FROM scoring.manager;
	DELETE FROM scoring.setting;
END;
$$;
-- Makes model $1 the active one
CREATE FUNCTION pg_temp.use_model(int) RETURNS void
LANGUAGE sql
AS $$
	UPDATE scoring.model SET active = false WHERE active AND model_id <> $1;
	UPDATE scoring.model SET active = true WHERE model_id = $1;
$$;

--
-- 1. forecast_monthly: months in the session's time zone, closed and open
-- months.
--
-- January (every lead closed):
--   101 B 100000 -> 10000, won 14000
--   102 B  50000 ->  5000, lost
--   103 K  20000 -> 10000, refused (closed too)
--   104 B  10000 ->  1000, won 1000, at 23:59:59 Moscow on Jan 31
--   expected 26000, won 15000, accuracy 15000/26000 = 0.576923 -> 0.5769,
--   error -0.4231
-- February (open leads: no accuracy, no error):
--   201 B  30000 ->  3000, won 2500, at 00:00 Moscow on Feb 1 (still Jan 31 in UTC)
--   202 K  40000 -> 20000, new (nobody present: queued)
--   203 B   1000 ->   100, draft
--   expected 23100, won 2500, open 2 leads with 20100
-- March: one lead, lost: closed, won 0 -> accuracy 0.0000, error -1.0000
-- April: one lead without a budget (no forecast), lost: closed, but nothing
-- expected -> no accuracy
--
SELECT pg_temp.reset();
SET scoring.now = '2026-02-10 10:00+03';
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status, won_profit)
VALUES (101, '2026-01-10 12:00+03', 's1', 'email', 'B', 100000, 'won', 14000),
	   (102, '2026-01-11 12:00+03', 's1', 'email', 'B',  50000, 'lost', NULL),
	   (103, '2026-01-12 12:00+03', 's1', 'email', 'K',  20000, 'refused', NULL),
	   (104, '2026-01-31 20:59:59+00', 's1', 'email', 'B', 10000, 'won', 1000),
	   (201, '2026-01-31 21:00:00+00', 's1', 'email', 'B', 30000, 'won', 2500),
	   (202, '2026-02-02 12:00+03', 's1', 'email', 'K', 40000, 'new', NULL),
	   (203, '2026-02-03 12:00+03', 's1', 'email', 'B', 1000, 'draft', NULL),
	   (301, '2026-03-03 12:00+03', 's1', 'email', 'B', 1000, 'lost', NULL),
	   (401, '2026-04-03 12:00+03', 's1', 'email', 'B', NULL, 'lost', NULL);
SELECT lead_id, status, p_win, expected_profit, forecast_profit
  FROM scoring.lead ORDER BY lead_id;
SELECT * FROM scoring.forecast_monthly ORDER BY month;
-- the same months in UTC: 104 and 201 both fall in January
SET TimeZone = 'UTC';
SELECT month, leads, expected_profit, won_profit, open_leads, accuracy
  FROM scoring.forecast_monthly WHERE month < '2026-03-01' ORDER BY month;
SET TimeZone = 'Europe/Moscow';
-- one month through a WHERE on the view
SELECT * FROM scoring.forecast_monthly WHERE month = '2026-02-01';
-- closing the last open leads of February gives it an accuracy:
-- won 2500 + 21000 = 23500 / 23100 = 1.017316 -> 1.0173, error 0.0173
UPDATE scoring.lead SET status = 'won', won_profit = 21000 WHERE lead_id = 202;
UPDATE scoring.lead SET status = 'lost' WHERE lead_id = 203;
SELECT * FROM scoring.forecast_monthly WHERE month = '2026-02-01';

--
-- 2. The forecast is frozen when the lead is first scored and again when
-- it is first assigned; a later rescore never moves it.
--
-- model 2: intercept ln 3 -> p_win = 0.75: B 0.15 x budget, K 0.75 x budget
--
SELECT pg_temp.reset();
SET scoring.now = '2026-02-10 10:00+03';
INSERT INTO scoring.manager (manager_id, full_name, tier) VALUES (1, 'Manager A', 'junior');
SELECT scoring.heartbeat(1, false, '2026-02-10 10:00+03');
-- 501: routed at once to manager 1 (forecast frozen at routing: 1000)
-- 502: a history lead, won (frozen when scored: 2000)
-- 503: a draft: scored (300), routed later
-- 504: auto (priority 5: never routed; frozen when scored: 5)
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status, won_profit)
VALUES (501, '2026-02-10 09:00+03', 's1', 'email', 'B', 10000, 'new', NULL),
	   (502, '2026-02-09 09:00+03', 's1', 'email', 'B', 20000, 'won', 2000),
	   (503, '2026-02-10 09:30+03', 's1', 'email', 'B',  3000, 'draft', NULL),
	   (504, '2026-02-10 09:40+03', 's1', 'email', 'B',    50, 'new', NULL);
SELECT lead_id, status, assignee_id, p_win, expected_profit, forecast_profit
  FROM scoring.lead ORDER BY lead_id;
CREATE TEMP TABLE fm_before AS SELECT * FROM scoring.forecast_monthly;
SELECT * FROM fm_before;
-- a new model and a rescore of every lead: expected profit moves ...
UPDATE scoring.model SET active = false WHERE model_id = 1;
INSERT INTO scoring.model (model_id, active, trained_at, train_since, train_until,
						   n_rows, n_won, intercept, weights)
VALUES (2, true, '2026-02-10 09:50+03', '2025-02-01 00:00+03', '2026-02-01 00:00+03',
		0, 0, ln(3), '{}');
SELECT scoring.rescore(false) AS rescored;
SELECT lead_id, status, round(p_win::numeric, 6) AS p_win, expected_profit, forecast_profit
  FROM scoring.lead ORDER BY lead_id;
-- ... the forecast does not: forecast_monthly is what it was
SELECT (SELECT count(*) FROM (SELECT * FROM fm_before
							  EXCEPT SELECT * FROM scoring.forecast_monthly) d) AS changed_rows;
-- the draft becomes ready and is routed now: it gets the score at routing
-- (0.15 x 3000 = 450)
UPDATE scoring.lead SET status = 'new' WHERE lead_id = 503;
SELECT lead_id, status, assignee_id, expected_profit, forecast_profit
  FROM scoring.lead WHERE lead_id = 503;
-- February: 1000 + 2000 + 450 + 5 = 3455
SELECT month, leads, expected_profit, open_leads, open_expected_profit
  FROM scoring.forecast_monthly;

-- A lead queued at entry (nobody present) keeps its first score until it
-- is first assigned, and then takes the score it has at that moment.
SELECT pg_temp.reset();
SET scoring.now = '2026-02-11 10:00+03';
SELECT pg_temp.use_model(1);
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status)
VALUES (601, '2026-02-11 10:00+03', 's1', 'email', 'B', 10000, 'new');
SELECT lead_id, status, expected_profit, forecast_profit FROM scoring.lead;
-- model 2 (0.75): the queued lead is rescored, its forecast stays at 1000
SELECT pg_temp.use_model(2);
SELECT scoring.rescore() AS rescored;
SELECT lead_id, status, expected_profit, forecast_profit FROM scoring.lead;
-- a manager comes: dispatch assigns it; the forecast is the score at routing
INSERT INTO scoring.manager (manager_id, full_name, tier) VALUES (1, 'Manager A', 'junior');
SELECT scoring.heartbeat(1, false, '2026-02-11 10:01+03');
SELECT scoring.dispatch('2026-02-11 10:01+03') AS placed;
SELECT lead_id, status, assignee_id, expected_profit, forecast_profit FROM scoring.lead;
-- manager A lets it lapse (accept_timeout 15 minutes) while nobody else is
-- present: it goes back to the queue ...
SELECT scoring.set_presence(1, 'offline', '2026-02-11 10:10+03');
SELECT scoring.dispatch('2026-02-11 10:17+03') AS placed;
SELECT lead_id, status, assignee_id, lapsed_ids, expected_profit, forecast_profit
  FROM scoring.lead;
-- ... a model 1 rescore (p 0.5) ...
SELECT pg_temp.use_model(1);
SELECT scoring.rescore() AS rescored;
-- ... and manager B takes it.  It was routed (and assigned) before: the
-- forecast must stay 1500.
-- (a lapsed lead that went back to the queue is routed a second time:
-- that does not take the later rescore, 1000)
INSERT INTO scoring.manager (manager_id, full_name, tier) VALUES (2, 'Manager B', 'junior');
SELECT scoring.heartbeat(2, false, '2026-02-11 10:20+03');
SELECT scoring.dispatch('2026-02-11 10:20+03') AS placed;
SELECT lead_id, status, assignee_id, expected_profit, forecast_profit,
	   forecast_profit = 1500 AS forecast_kept
  FROM scoring.lead;

--
-- 3. manager_plan: the leads each manager received by month, their
-- forecast as plan, won profit, attainment and the bonus coefficient of
-- the largest min_attainment reached (scoring.bonus_scale, user-edited).
--
-- bonus scale: >= 0: 0, >= 0.8: 0.5, >= 1.0: 1.0, >= 1.2: 1.5
-- March (closed leads imported with their assignee; B: plan 0.1 x budget):
--   manager 1 manager A:  701 plan 10000, won 8000     -> 0.8 exactly: 0.5
--   manager 2 manager B: 702 plan 10000, won 7999.50  -> 0.79995, shown
--                    rounded as 0.8000, but below 0.8: 0
--   manager 3 manager C:  703 plan 10000 won 12000, 704 plan 5000 lost, 705
--                    plan 5000 won 8000 -> plan 20000, won 20000: 1.0000: 1.0
--   manager 4 Gleb:  706 plan 10000, won 12000    -> 1.2 exactly: 1.5
--   manager 9 (no longer in scoring.manager): 707 plan 1000, won 2000
--                    -> 2.0: 1.5, no name
-- April: manager A 708 plan 10000, lost -> 0: 0; manager B 709 without a budget
--   (no forecast) -> plan 0: no attainment, no coefficient
-- Lead 710 of March has nobody: in no plan.
--
SELECT pg_temp.reset();
SELECT pg_temp.use_model(1);
INSERT INTO scoring.bonus_scale (min_attainment, coefficient)
VALUES (0, 0), (0.8, 0.5), (1.0, 1.0), (1.2, 1.5);
INSERT INTO scoring.manager (manager_id, full_name, tier)
VALUES (1, 'Manager A', 'junior'), (2, 'Manager B', 'junior'), (3, 'Manager C', 'middle'),
	   (4, 'Gleb', 'senior');
INSERT INTO scoring.lead (lead_id, created_at, brand, budget, status, assignee_id, won_profit)
VALUES (701, '2026-03-02 10:00+03', 'B', 100000, 'won', 1, 8000),
	   (702, '2026-03-02 10:00+03', 'B', 100000, 'won', 2, 7999.50),
	   (703, '2026-03-03 10:00+03', 'B', 100000, 'won', 3, 12000),
	   (704, '2026-03-04 10:00+03', 'B',  50000, 'lost', 3, NULL),
	   (705, '2026-03-31 23:59+03', 'B',  50000, 'won', 3, 8000),
	   (706, '2026-03-05 10:00+03', 'B', 100000, 'won', 4, 12000),
	   (707, '2026-03-06 10:00+03', 'B',  10000, 'won', 9, 2000),
	   (708, '2026-04-01 00:00+03', 'B', 100000, 'lost', 1, NULL),
	   (709, '2026-04-02 10:00+03', 'B', NULL, 'lost', 2, NULL),
	   (710, '2026-03-07 10:00+03', 'B', 100000, 'won', NULL, 5000);
SELECT * FROM scoring.manager_plan ORDER BY month, manager_id;
-- one month through a WHERE on the view
SELECT month, manager_id, plan, attainment, bonus_coefficient
  FROM scoring.manager_plan WHERE month = '2026-04-01' ORDER BY manager_id;
-- the scale is the user's: a new step at 0.79 pays manager B 0.3; without any
-- step reached there is no coefficient
INSERT INTO scoring.bonus_scale (min_attainment, coefficient) VALUES (0.79, 0.3);
DELETE FROM scoring.bonus_scale WHERE min_attainment = 0;
SELECT month, manager_id, attainment, bonus_coefficient
  FROM scoring.manager_plan ORDER BY month, manager_id;
-- the plan of manager 1 and 3 in March is the sum of forecast_monthly's
-- leads they received: all of the 61000 expected in March but 710 (10000,
-- nobody's): 51000
SELECT (SELECT expected_profit FROM scoring.forecast_monthly WHERE month = '2026-03-01') AS march_expected,
	   (SELECT sum(plan) FROM scoring.manager_plan WHERE month = '2026-03-01') AS march_plans;

--
-- 4. marketing_roi: spend per month, shop and channel against the leads
-- it brought.
--
-- April spend: s1/email 1000, s1/phone 0 (spend row, no leads either),
-- s2/chat 500 without leads.  April leads (B, expected 0.1 x budget):
--   s1/email: 400000 (P1, 40000, won 30000), 40000 (P2, 4000), 39990
--             (P3, 3999), 400 (P4, 40), 100 (P5, 10): 5 leads,
--             expected 48049, won 30000; ROI 48.0490 and 30.0000
--   s3/form:  4000 (P3, 400) won 500: no spend: spend 0, no ROI
-- March s1/email: spend 200, one lead 10000 (P3, 1000, lost): 5.0000, 0.0000
--
SELECT pg_temp.reset();
INSERT INTO scoring.marketing_spend (month, shop, channel, amount)
VALUES ('2026-04-01', 's1', 'email', 1000), ('2026-04-01', 's1', 'phone', 0),
	   ('2026-04-01', 's2', 'chat', 500), ('2026-03-01', 's1', 'email', 200);
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status, won_profit)
VALUES (801, '2026-04-01 00:00+03', 's1', 'email', 'B', 400000, 'won', 30000),
	   (802, '2026-04-10 10:00+03', 's1', 'email', 'B',  40000, 'lost', NULL),
	   (803, '2026-04-10 10:00+03', 's1', 'email', 'B',  39990, 'draft', NULL),
	   (804, '2026-04-10 10:00+03', 's1', 'email', 'B',    400, 'lost', NULL),
	   (805, '2026-04-30 23:59+03', 's1', 'email', 'B',    100, 'lost', NULL),
	   (806, '2026-04-11 10:00+03', 's3', 'form',  'B',   4000, 'won', 500),
	   (807, '2026-03-31 23:59:59+03', 's1', 'email', 'B', 10000, 'lost', NULL);
SELECT lead_id, priority, expected_profit FROM scoring.lead ORDER BY lead_id;
SELECT * FROM scoring.marketing_roi ORDER BY month, shop, channel;
-- a spend row is one month, shop and channel: the same key twice is refused,
-- and so are a negative amount and a month that is not a first day
INSERT INTO scoring.marketing_spend VALUES ('2026-04-01', 's1', 'email', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.marketing_spend VALUES ('2026-05-01', 's1', 'email', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO scoring.marketing_spend VALUES ('2026-05-02', 's1', 'email', 1);
\echo :LAST_ERROR_SQLSTATE

--
-- 5. work_queue: open leads only (not drafts, not closed), by priority,
-- then expected profit (highest first, none last), then age (oldest first).
--
--   901 P2 4000 queued    09:00      905 P2 4000 queued 08:00 (older: first)
--   902 P1 40000 queued              906 P3 no budget? see below
--   903 P5 5 auto                    907 draft, 908 won: not in the queue
--   904 P2 5000 accepted (manager 1)
--
SELECT pg_temp.reset();
SET scoring.now = '2026-04-10 10:00+03';
INSERT INTO scoring.manager (manager_id, full_name, tier) VALUES (1, 'Manager A', 'junior');
INSERT INTO scoring.client (client_id, kind, name) VALUES (77, 'company', 'Metal Works');
INSERT INTO scoring.lead (lead_id, created_at, client_id, shop, channel, brand, budget, status, assignee_id, won_profit)
VALUES (901, '2026-04-10 09:00+03', NULL, 's1', 'email', 'B',  40000, 'new', NULL, NULL),
	   (902, '2026-04-10 09:30+03', 77,   's1', 'email', 'B', 400000, 'new', NULL, NULL),
	   (903, '2026-04-09 09:00+03', NULL, 's1', 'email', 'B',     50, 'new', NULL, NULL),
	   (904, '2026-04-10 09:10+03', NULL, 's1', 'email', 'B',  50000, 'accepted', 1, NULL),
	   (905, '2026-04-10 08:00+03', NULL, 's1', 'email', 'B',  40000, 'new', NULL, NULL),
	   (906, '2026-04-10 07:00+03', NULL, 's1', 'email', 'B',   NULL, 'new', NULL, NULL),
	   (907, '2026-04-01 07:00+03', NULL, 's1', 'email', 'B', 900000, 'draft', NULL, NULL),
	   (908, '2026-04-01 07:00+03', NULL, 's1', 'email', 'B', 900000, 'won', NULL, 1);
SELECT lead_id, priority, expected_profit, status, assignee_id, created_at,
	   client_id, client_name, budget, score_flags
  FROM scoring.work_queue;

--
-- 6. model_quality: training metrics as stored, and live metrics on leads
-- scored by the model and closed (won/lost) since it was trained.
--
-- model 3 (trained 2026-05-01): shop s1 -> p 0.8, s2 -> 0.5, s3 -> 0.2
--   live: won s1, s1, s2; lost s1, s2, s3, s3 (7 leads, 3 wins)
--   AUC by hand, over the 3 x 4 (won, lost) pairs, a tie counting 1/2:
--     each won s1 (0.8): vs 0.8 tie 0.5, vs 0.5, 0.2, 0.2: 3 -> 3.5 (x2)
--     the won s2 (0.5): vs 0.8: 0, vs 0.5 tie 0.5, vs 0.2, 0.2: 2 -> 2.5
--     (3.5 + 3.5 + 2.5) / 12 = 9.5 / 12 = 0.7917
--   log-loss: -(2 ln 0.8 + ln 0.5 + ln 0.2 + ln 0.5 + 2 ln 0.8 + ln 0.2... )
--     won: -ln 0.8 (x2), -ln 0.5; lost: -ln 0.2 (s1), -ln 0.5, -ln 0.8 (x2)
--     = (4 x 0.223144 + 2 x 0.693147 + 1.609438) / 7 = 3.888309 / 7 = 0.5555
--   sum p / wins = (3 x 0.8 + 2 x 0.5 + 2 x 0.2) / 3 = 3.8 / 3 = 1.2667
--   not counted: 1001 (created before the model was trained), 1002 (open),
--   1003 (refused), 1011..1014 (scored by model 1)
-- model 1 (p 0.5 for all, trained 2025-12-31): 1011..1014, 2 won, 2 lost:
--   every pair a tie: AUC 0.5; log-loss ln 2 = 0.6931; sum p / wins 1.0
-- model 2: no live leads
--
-- live_auc gives tied p_win their average rank, so a tie between a won and
-- a lost lead counts 1/2: model 3 gets 0.7917, model 1 (all tied) 0.5.
--
SELECT pg_temp.reset();
INSERT INTO scoring.model (model_id, active, trained_at, train_since, train_until,
						   n_rows, n_won, intercept, weights, metrics)
VALUES (3, false, '2026-05-01 00:00+03', '2025-05-01 00:00+03', '2026-05-01 00:00+03',
		1000, 200, 0, jsonb_build_object('shop=s1', ln(4), 'shop=s3', -ln(4)),
		'{"holdout": {"auc": 0.75, "log_loss": 0.5, "sum_p_over_wins": 1.02}}');
SELECT pg_temp.use_model(1);
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status, won_profit)
VALUES (1011, '2026-05-02 10:00+03', 's1', 'email', 'B', 1000, 'won', 100),
	   (1012, '2026-05-02 10:00+03', 's3', 'email', 'B', 1000, 'won', 100),
	   (1013, '2026-05-02 10:00+03', 's1', 'email', 'B', 1000, 'lost', NULL),
	   (1014, '2026-05-02 10:00+03', 's2', 'email', 'B', 1000, 'lost', NULL);
SELECT pg_temp.use_model(3);
INSERT INTO scoring.lead (lead_id, created_at, shop, channel, brand, budget, status, won_profit)
VALUES (1001, '2026-04-30 23:59+03', 's3', 'email', 'B', 1000, 'won', 100),
	   (1002, '2026-05-03 10:00+03', 's3', 'email', 'B', 1000, 'new', NULL),
	   (1003, '2026-05-03 10:00+03', 's1', 'email', 'B', 1000, 'refused', NULL),
	   (1021, '2026-05-04 10:00+03', 's1', 'email', 'B', 1000, 'won', 100),
	   (1022, '2026-05-04 11:00+03', 's1', 'email', 'B', 1000, 'won', 100),
	   (1023, '2026-05-04 12:00+03', 's2', 'email', 'B', 1000, 'won', 100),
	   (1024, '2026-05-04 13:00+03', 's1', 'email', 'B', 1000, 'lost', NULL),
	   (1025, '2026-05-04 14:00+03', 's2', 'email', 'B', 1000, 'lost', NULL),
	   (1026, '2026-05-04 15:00+03', 's3', 'email', 'B', 1000, 'lost', NULL),
	   (1027, '2026-05-04 16:00+03', 's3', 'email', 'B', 1000, 'lost', NULL);
SELECT lead_id, status, model_id, round(p_win::numeric, 4) AS p_win
  FROM scoring.lead ORDER BY lead_id;
SELECT model_id, active, n_rows, holdout_auc, holdout_log_loss, holdout_sum_p_over_wins,
	   live_leads, live_wins, round(live_auc::numeric, 4) AS live_auc,
	   round(live_log_loss::numeric, 4) AS live_log_loss,
	   round(live_sum_p_over_wins::numeric, 4) AS live_sum_p_over_wins
  FROM scoring.model_quality ORDER BY model_id;
-- the same, checked against the hand figures
SELECT model_id,
	   round(live_auc::numeric, 4) = CASE model_id WHEN 1 THEN 0.5 WHEN 3 THEN 0.7917 END AS auc_ok,
	   round(live_log_loss::numeric, 4) = CASE model_id WHEN 1 THEN round(ln(2)::numeric, 4)
			WHEN 3 THEN round(((-4 * ln(0.8) - 2 * ln(0.5) - ln(0.2)) / 7)::numeric, 4) END
		   AS log_loss_ok
  FROM scoring.model_quality WHERE model_id IN (1, 3) ORDER BY model_id;
-- calibration by decile of model 3: 7 leads -> 7 deciles of one lead, in
-- order of p (the order within a tie is arbitrary, so only the mean p and
-- the total of wins are shown)
SELECT model_id, jsonb_array_length(live_calibration) AS deciles,
	   (SELECT string_agg(e->>'mean_p', ' ' ORDER BY (e->>'decile')::int)
		  FROM jsonb_array_elements(live_calibration) e) AS mean_p,
	   (SELECT sum((e->>'leads')::int) FROM jsonb_array_elements(live_calibration) e) AS leads,
	   (SELECT sum((e->>'leads')::int * (e->>'win_rate')::numeric)
		  FROM jsonb_array_elements(live_calibration) e) AS wins
  FROM scoring.model_quality WHERE model_id = 3;

--
-- 7. grant_bi: the role can read every view and nothing else.
--
SELECT pg_temp.use_model(1);
SELECT 'scoring_views_bi_' || pg_backend_pid() AS bi_role \gset
CREATE ROLE :"bi_role";
-- before the grant, not even the views
SET ROLE :"bi_role";
SELECT count(*) FROM scoring.forecast_monthly;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT scoring.grant_bi(:'bi_role');
SET ROLE :"bi_role";
SELECT count(*) AS forecast_monthly FROM scoring.forecast_monthly;
SELECT count(*) AS manager_plan FROM scoring.manager_plan;
SELECT count(*) AS marketing_roi FROM scoring.marketing_roi;
SELECT count(*) AS work_queue FROM scoring.work_queue;
SELECT count(*) AS model_quality FROM scoring.model_quality;
SELECT count(*) AS free_companies FROM scoring.free_companies;
-- the tables, the functions that read or write them: 42501
SELECT count(*) FROM scoring.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM scoring.model;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM scoring.marketing_spend;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM scoring.client;
\echo :LAST_ERROR_SQLSTATE
UPDATE scoring.bonus_scale SET coefficient = 10;
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.train('2025-01-01', '2026-06-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.rescore();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM scoring.backtest('2026-05-01', '2026-06-01');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.heartbeat(1, true, '2026-05-04 10:00+03');
\echo :LAST_ERROR_SQLSTATE
SELECT scoring.dispatch('2026-05-04 10:00+03');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- nothing was changed by the role
SELECT count(*) AS models, (SELECT count(*) FROM scoring.presence) AS presence
  FROM scoring.model;
DROP OWNED BY :"bi_role";
DROP ROLE :"bi_role";
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname = :'bi_role';

--
-- 8. backtest(): 15 months (2025-01 .. 2026-03) of 120 closed leads each,
-- all B with budget 10000 (budget x margin 2000), with a strong signal:
-- shop "good" (even i) wins 4 times in 5, shop "bad" (odd i) once in 5;
-- a won lead brings 2000.  Per month 60 x 0.8 + 60 x 0.2 = 60 wins:
-- won 120000, and a calibrated forecast near that.
--
SELECT pg_temp.reset();
INSERT INTO scoring.lead (created_at, shop, channel, brand, budget, status, won_profit)
SELECT m + interval '1 day' + i * interval '5 hours',
	   CASE WHEN i % 2 = 0 THEN 'good' ELSE 'bad' END, 'email', 'B', 10000,
	   CASE WHEN (i % 2 = 0 AND i % 10 <> 0) OR i % 10 = 1 THEN 'won' ELSE 'lost' END,
	   CASE WHEN (i % 2 = 0 AND i % 10 <> 0) OR i % 10 = 1 THEN 2000 END
  FROM generate_series(timestamptz '2025-01-01 00:00+03', '2026-03-01 00:00+03',
					   interval '1 month') AS m,
	   generate_series(1, 120) AS i;
SELECT count(*) AS leads, count(*) FILTER (WHERE status = 'won') AS won FROM scoring.lead;
SELECT count(*) AS models_before, max(model_id) FILTER (WHERE active) AS active_before
  FROM scoring.model \gset
CREATE TEMP TABLE bt AS
SELECT b.* FROM scoring.backtest('2026-01-01', '2026-04-01', '{"seed": 7}')
	 WITH ORDINALITY AS b(month, leads, expected_profit, won_profit, accuracy, bias, n);
-- one row per month, then the whole period without a month
SELECT n, month, leads, won_profit,
	   accuracy = round(won_profit / expected_profit, 4) AS accuracy_is_won_over_expected,
	   bias = round(expected_profit / won_profit - 1, 4) AS bias_is_expected_over_won,
	   accuracy BETWEEN 0.9 AND 1.1 AS accurate
  FROM bt ORDER BY n;
SELECT (SELECT expected_profit FROM bt WHERE month IS NULL)
		   = (SELECT sum(expected_profit) FROM bt WHERE month IS NOT NULL) AS total_is_sum;
-- no model is left behind, and the active one stays
SELECT count(*) - :models_before AS models_added,
	   max(model_id) FILTER (WHERE active) = :active_before AS same_active
  FROM scoring.model;
-- one month; since after until is refused
SELECT month, leads FROM scoring.backtest('2026-03-15', '2026-03-20');
SELECT * FROM scoring.backtest('2026-03-01', '2026-02-01');
\echo :LAST_ERROR_SQLSTATE

RESET scoring.now;
RESET TimeZone;
