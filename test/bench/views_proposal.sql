/*
 * test/bench/views_proposal.sql
 *		What it would take to meet the targets, built in the bench database
 *		only (the extension is not edited): a monthly aggregate per
 *		(month, assignee) kept by a row trigger on scoring.lead, and views
 *		over it with the columns of forecast_monthly and manager_plan.
 *
 * Months are pinned to one time zone (Europe/Moscow): an aggregate cannot
 * follow the session's TimeZone the way the views do.
 */
\set ON_ERROR_STOP on
SET TimeZone = 'Europe/Moscow';
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE bench.lead_month (
	month		date NOT NULL,
	assignee_id int NOT NULL,			-- 0: nobody
	leads		bigint NOT NULL,
	expected	numeric NOT NULL,
	won			numeric NOT NULL,
	open_leads	bigint NOT NULL,
	open_expected numeric NOT NULL,
	PRIMARY KEY (month, assignee_id)
);
INSERT INTO bench.lead_month
SELECT date_trunc('month', created_at)::date, coalesce(assignee_id, 0), count(*),
	   coalesce(sum(forecast_profit), 0),
	   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0),
	   count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')),
	   coalesce(sum(forecast_profit) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')), 0)
  FROM scoring.lead GROUP BY 1, 2;

CREATE FUNCTION bench.lead_month_add(l scoring.lead, sign int) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO bench.lead_month AS a
	VALUES ((date_trunc('month', l.created_at, 'Europe/Moscow'))::date, coalesce(l.assignee_id, 0),
			sign, sign * coalesce(l.forecast_profit, 0),
			sign * CASE WHEN l.status = 'won' THEN coalesce(l.won_profit, 0) ELSE 0 END,
			sign * (l.status NOT IN ('won', 'lost', 'refused'))::int,
			sign * CASE WHEN l.status NOT IN ('won', 'lost', 'refused')
						THEN coalesce(l.forecast_profit, 0) ELSE 0 END)
	ON CONFLICT (month, assignee_id) DO UPDATE
	   SET leads = a.leads + excluded.leads, expected = a.expected + excluded.expected,
		   won = a.won + excluded.won, open_leads = a.open_leads + excluded.open_leads,
		   open_expected = a.open_expected + excluded.open_expected;
$$;
CREATE FUNCTION bench.lead_month_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		PERFORM bench.lead_month_add(OLD, -1);
	END IF;
	IF TG_OP IN ('UPDATE', 'INSERT') THEN
		PERFORM bench.lead_month_add(NEW, 1);
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER zz_lead_month AFTER INSERT OR DELETE OR UPDATE ON scoring.lead
	FOR EACH ROW EXECUTE FUNCTION bench.lead_month_trigger();

CREATE VIEW bench.forecast_monthly AS
SELECT month, sum(leads) AS leads, sum(expected) AS expected_profit, sum(won) AS won_profit,
	   sum(open_leads) AS open_leads, sum(open_expected) AS open_expected_profit,
	   CASE WHEN sum(open_leads) = 0 AND sum(expected) > 0
			THEN round(sum(won) / sum(expected), 4) END AS accuracy,
	   CASE WHEN sum(open_leads) = 0 AND sum(expected) > 0
			THEN round(sum(won) / sum(expected) - 1, 4) END AS error
  FROM bench.lead_month GROUP BY month;
CREATE VIEW bench.manager_plan AS
SELECT a.month, a.assignee_id AS manager_id, m.full_name, a.leads, a.expected AS plan,
	   a.won AS won_profit,
	   CASE WHEN a.expected > 0 THEN round(a.won / a.expected, 4) END AS attainment,
	   (SELECT b.coefficient FROM scoring.bonus_scale b
		 WHERE a.expected > 0 AND b.min_attainment <= a.won / a.expected
		 ORDER BY b.min_attainment DESC LIMIT 1) AS bonus_coefficient
  FROM bench.lead_month a LEFT JOIN scoring.manager m ON m.manager_id = a.assignee_id
 WHERE a.assignee_id <> 0 AND a.leads <> 0;
ANALYZE bench.lead_month;
