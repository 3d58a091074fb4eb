-- test/bench/route_bench_setup.sql
--	Set-up of the routing benchmark (route_bench.sh): the extension, a
--	hand-made model (p_win 0.5 for every lead, so scoring does its full
--	work), one brand, priority bands, 8 junior managers on a call and on
--	shift all day (so the clock does not matter), plus a middle and a
--	senior who never get these leads (budgets are under 100,000).

CREATE EXTENSION IF NOT EXISTS scoring;

INSERT INTO scoring.brand (brand, margin) VALUES ('Fubag', 0.2);
INSERT INTO scoring.priority_band (priority, min_expected_profit)
VALUES (1, 40000), (2, 4000), (3, 400), (4, 40);
INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,
						   intercept, weights)
VALUES (true, '2025-01-01 00:00+00', '2026-01-01 00:00+00', 0, 0, 0, '{}');
INSERT INTO scoring.setting (name, value) VALUES ('shift_guard', '"0 minutes"');

INSERT INTO scoring.manager (manager_id, tier, shift_start, shift_end)
SELECT m, 'junior', '00:00', '23:59:59.999999' FROM generate_series(1, 8) AS m;
INSERT INTO scoring.manager (manager_id, tier, shift_start, shift_end)
VALUES (9, 'middle', '00:00', '23:59:59.999999'), (10, 'senior', '00:00', '23:59:59.999999');
SELECT count(scoring.heartbeat(m, true)) AS present FROM generate_series(1, 10) AS m;

-- Before each run: no leads, no log, counters at zero
CREATE FUNCTION public.route_bench_reset() RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning
AS $$
BEGIN
	TRUNCATE scoring.lead, scoring.assignment_log CASCADE;
	UPDATE scoring.manager_load SET open_leads = 0, day = NULL, day_leads = 0, day_profit = 0;
END;
$$;

-- After a run: the spread of the juniors' loads and whether the counters
-- match the leads
CREATE VIEW public.route_bench_check AS
SELECT (SELECT count(*) FROM scoring.lead) AS leads,
	   (SELECT count(*) FROM scoring.lead WHERE status = 'assigned') AS assigned,
	   (SELECT count(*) FROM scoring.lead WHERE status = 'queued') AS queued,
	   (SELECT max(day_leads) - min(day_leads) FROM scoring.manager_load
		 WHERE manager_id BETWEEN 1 AND 8) AS spread,
	   (SELECT sum(day_leads) FROM scoring.manager_load)
		 = (SELECT count(*) FROM scoring.lead WHERE status = 'assigned') AS day_leads_exact,
	   NOT EXISTS (SELECT FROM scoring.manager_load l
				    WHERE l.open_leads <> (SELECT count(*) FROM scoring.lead d
											WHERE d.assignee_id = l.manager_id
											  AND d.status IN ('assigned', 'accepted')))
		 AS open_exact;
