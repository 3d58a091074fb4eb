/*
 * scoring--0.1.0.sql
 *		Tables, functions and triggers of the scoring extension.
 *
 * The public interface (names of tables, columns and functions) follows
 * SPEC.md section 6; CRM code, cron jobs and reports are written against it.
 */

-- complain if the script is sourced in psql rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION scoring" to load this file. \quit

/* ---------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------- */

/*
 * Validators used by CHECK constraints; they raise a specific error saying
 * what is wrong instead of a bare constraint violation.
 */
CREATE FUNCTION scoring.condition_valid(condition jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'scoring_condition_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.condition_valid(jsonb) IS
	'true for a well-formed condition; raises an error naming the problem otherwise';

CREATE FUNCTION scoring.condition_matches(condition jsonb, subject jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'scoring_condition_matches'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.condition_matches(jsonb, jsonb) IS
	'true when the condition holds for a lead given as JSON: lead columns at the top, client columns under "client", free features under "features"';

CREATE FUNCTION scoring.model_valid(intercept float8, weights jsonb,
									numeric_features jsonb, ltv jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'scoring_model_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION scoring.model_valid(float8, jsonb, jsonb, jsonb) IS
	'true for a usable model row; raises an error naming the problem otherwise';

CREATE FUNCTION scoring.time_zone_valid(time_zone text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'scoring_time_zone_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.time_zone_valid(text) IS
	'true for a time zone name PostgreSQL knows; raises an error otherwise';

CREATE FUNCTION scoring.clock()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'scoring_clock'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION scoring.clock() IS
	'the moment the extension takes for now: the setting scoring.now when set (tests, replays), else now()';

/*
 * Settings: the table holds what the user changed, the view adds the
 * defaults.  pg_dump keeps the user's rows.
 */
CREATE FUNCTION scoring.setting_valid(name text, value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	CASE name
	WHEN 'presence_timeout', 'shift_guard', 'accept_timeout', 'claim_period',
		 'claim_cooldown' THEN
		IF jsonb_typeof(value) IS DISTINCT FROM 'string'
		   OR (value #>> '{}')::interval < interval '0' THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = format('setting "%s" must be a non-negative interval such as "5 minutes"', name);
		END IF;
	WHEN 'default_margin' THEN
		IF jsonb_typeof(value) IS DISTINCT FROM 'number'
		   OR value::numeric < 0 OR value::numeric > 1 THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "default_margin" must be a number between 0 and 1';
		END IF;
	WHEN 'max_budget' THEN
		IF jsonb_typeof(value) IS DISTINCT FROM 'number' OR value::numeric <= 0 THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "max_budget" must be a positive number';
		END IF;
	WHEN 'claim_touch_kinds' THEN
		IF jsonb_typeof(value) IS DISTINCT FROM 'array' OR EXISTS (
				SELECT FROM jsonb_array_elements(value) k
				 WHERE k NOT IN ('"call_connected"', '"call_missed"', '"email_out"',
								 '"email_in"', '"meeting"')) THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "claim_touch_kinds" must be an array of touch kinds';
		END IF;
	WHEN 'max_claims' THEN
		IF value <> 'null' AND (jsonb_typeof(value) IS DISTINCT FROM 'number'
								OR value::numeric < 0 OR value::numeric > 2147483647
								OR value::numeric <> trunc(value::numeric)) THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "max_claims" must be a whole number from 0, or null';
		END IF;
	WHEN 'auto_sequence' THEN
		IF jsonb_typeof(value) NOT IN ('string', 'null') THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "auto_sequence" must be a sequence name or null';
		END IF;
	WHEN 'pool_rule' THEN
		IF jsonb_typeof(value) IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "pool_rule" must be a JSON object';
		END IF;
	WHEN 'balance_by' THEN
		IF value NOT IN ('"count"', '"expected_profit"') THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'setting "balance_by" must be "count" or "expected_profit"';
		END IF;
	ELSE
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('unknown setting "%s"', name),
			HINT = 'SELECT name FROM scoring.settings lists them.';
	END CASE;
	RETURN true;
EXCEPTION
	WHEN invalid_datetime_format OR datetime_field_overflow
		 OR interval_field_overflow OR invalid_text_representation THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('setting "%s" must be a non-negative interval such as "5 minutes"', name);
END;
$$;
COMMENT ON FUNCTION scoring.setting_valid(text, jsonb) IS
	'true for a known setting with a value of the right kind; raises an error otherwise';

CREATE TABLE scoring.setting (
	name		text PRIMARY KEY,
	value		jsonb NOT NULL,
	CONSTRAINT setting_valid CHECK (scoring.setting_valid(name, value))
);
COMMENT ON TABLE scoring.setting IS
	'settings changed by the user; scoring.settings shows them with the defaults';

CREATE VIEW scoring.settings AS
	SELECT d.name, coalesce(s.value, d.value) AS value, d.value AS default_value,
		   d.description
	  FROM (VALUES
			('presence_timeout', '"5 minutes"'::jsonb,
			 'a manager without activity for this long is not present'),
			('shift_guard', '"10 minutes"',
			 'no new lead this close to lunch or to the end of a shift'),
			('accept_timeout', '"15 minutes"',
			 'an assigned lead not accepted within this goes to someone else'),
			('claim_period', '"2 months"',
			 'how long a touch keeps a company claimed'),
			('balance_by', '"count"',
			 'what routing balances: "count" or "expected_profit"'),
			('default_margin', '0.15',
			 'margin used for a brand missing from scoring.brand'),
			('max_budget', '1000000000000',
			 'budgets above this are taken for a typo and not scored'),
			('claim_touch_kinds', '["call_connected", "meeting", "email_in"]',
			 'touches by the owner that extend a claim'),
			('max_claims', 'null',
			 'the most companies one manager may hold; null: no cap'),
			('claim_cooldown', '"14 days"',
			 'how long a manager who let a claim expire waits to claim that company again'),
			('pool_rule', '{"min_segment_win_rate": 0.15, "min_turnover": 0}',
			 'the rule of refresh_pool(): companies worth active sales'),
			('auto_sequence', '"polite_decline"',
			 'the chain a lead handed to automation (priority 5) is enrolled in')
		   ) AS d(name, value, description)
	  LEFT JOIN scoring.setting s USING (name);
COMMENT ON VIEW scoring.settings IS 'effective settings: the user''s values over the defaults';

CREATE TABLE scoring.brand (
	brand		text PRIMARY KEY,
	margin		numeric NOT NULL
		CONSTRAINT brand_margin_range CHECK (margin >= 0 AND margin <= 1)
);
COMMENT ON TABLE scoring.brand IS 'profit margin of each brand, 0..1';

CREATE TABLE scoring.priority_band (
	priority	smallint PRIMARY KEY
		CONSTRAINT priority_band_priority_range CHECK (priority BETWEEN 1 AND 4),
	min_expected_profit numeric NOT NULL
		CONSTRAINT priority_band_finite CHECK (min_expected_profit >= 0
			AND min_expected_profit < 'Infinity'::numeric)
);
COMMENT ON TABLE scoring.priority_band IS
	'a lead gets the first priority whose min_expected_profit it reaches; below all bands it is priority 5';

-- Empty until the first scoring.train(), which fills it from quantiles of
-- expected profit on its training window (see README); edit freely after.

CREATE TABLE scoring.refusal_rule (
	name		text PRIMARY KEY,
	condition	jsonb NOT NULL
		CONSTRAINT refusal_rule_condition_valid CHECK (scoring.condition_valid(condition)),
	active		boolean NOT NULL DEFAULT true,
	description text
);
COMMENT ON TABLE scoring.refusal_rule IS
	'leads matching an active rule are refused on purpose: priority 5, automation only';

/* ---------------------------------------------------------------------
 * Clients and leads
 * ------------------------------------------------------------------- */

CREATE TABLE scoring.client (
	client_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	kind		text NOT NULL DEFAULT 'company'
		CONSTRAINT client_kind_valid CHECK (kind IN ('person', 'company')),
	name		text,
	inn			text,
	okved		text,
	industry	text,
	core_industry boolean,
	annual_turnover numeric,
	pool_eligible boolean NOT NULL DEFAULT false,
	potential	numeric,
	claimed		boolean NOT NULL DEFAULT false,
	time_zone	text NOT NULL DEFAULT 'Europe/Moscow'
		CONSTRAINT client_time_zone_valid CHECK (scoring.time_zone_valid(time_zone)),
	unsubscribed boolean NOT NULL DEFAULT false,
	bounced		boolean NOT NULL DEFAULT false,
	attrs		jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON COLUMN scoring.client.potential IS
	'set by refresh_pool(): profit won from the company in the last 12 months plus expected profit of its open leads';

CREATE TABLE scoring.lead (
	lead_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	created_at	timestamptz NOT NULL DEFAULT now(),
	client_id	bigint,			/* a client the database may not know (yet) */
	shop		text,
	channel		text,
	category	text,
	brand		text,
	budget		numeric,
	features	jsonb NOT NULL DEFAULT '{}',
	status		text NOT NULL DEFAULT 'new'
		CONSTRAINT lead_status_valid CHECK (status IN ('draft', 'new', 'queued',
			'assigned', 'auto', 'accepted', 'won', 'lost', 'refused')),
	/* computed by the scoring trigger */
	p_win		float8,
	potential_profit numeric,
	ltv_uplift	numeric,
	expected_profit numeric,
	priority	smallint,
	model_id	int,
	score_flags text[] NOT NULL DEFAULT '{}',
	/* routing */
	assignee_id int,
	assigned_at timestamptz,
	routed_expected_profit numeric,
	forecast_profit numeric
		CONSTRAINT lead_forecast_profit_finite CHECK (forecast_profit - forecast_profit = 0),
	lapsed_ids	int[] NOT NULL DEFAULT '{}',
	/* outcome */
	won_profit	numeric
		CONSTRAINT lead_won_profit_finite CHECK (won_profit - won_profit = 0),
	closed_at	timestamptz,
	refusal_reason text
);
COMMENT ON COLUMN scoring.lead.score_flags IS
	'what was missing or odd when the lead was scored (no_budget, unknown_brand, unknown_client, no_active_model, ...)';
COMMENT ON COLUMN scoring.lead.client_id IS
	'the CRM''s client; one scoring.client does not know (yet) is kept and flagged unknown_client, not refused';
COMMENT ON COLUMN scoring.lead.forecast_profit IS
	'p_win x budget x margin frozen when the lead was first routed (or first scored): what forecasts and plans count';
COMMENT ON CONSTRAINT lead_won_profit_finite ON scoring.lead IS
	'NaN and infinities fail it (x - x is NaN for them): lead_totals could never take them back out';
COMMENT ON COLUMN scoring.lead.lapsed_ids IS
	'managers who let this lead lapse without accepting it; it never goes back to them';
COMMENT ON COLUMN scoring.lead.ltv_uplift IS
	'the lifetime uplift included in potential_profit (segment average of the next 12 months)';

CREATE INDEX lead_client_history_idx ON scoring.lead (client_id, created_at)
	INCLUDE (status, closed_at) WHERE client_id IS NOT NULL;
CREATE INDEX lead_created_at_idx ON scoring.lead (created_at);
CREATE INDEX lead_open_idx ON scoring.lead (priority, created_at)
	WHERE status IN ('draft', 'new', 'queued', 'assigned', 'auto', 'accepted');

/* ---------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------- */

CREATE TABLE scoring.model (
	model_id	int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	trained_at	timestamptz NOT NULL DEFAULT now(),
	active		boolean NOT NULL DEFAULT false,
	train_since timestamptz NOT NULL,
	train_until timestamptz NOT NULL,
	n_rows		bigint NOT NULL,
	n_won		bigint NOT NULL,
	n_patterns	bigint,
	options		jsonb NOT NULL DEFAULT '{}',
	intercept	float8 NOT NULL,
	weights		jsonb NOT NULL,
	numeric_features jsonb NOT NULL DEFAULT '{}',
	ltv			jsonb NOT NULL DEFAULT '{}',
	metrics		jsonb NOT NULL DEFAULT '{}',
	CONSTRAINT model_valid CHECK (scoring.model_valid(intercept, weights, numeric_features, ltv))
);
COMMENT ON TABLE scoring.model IS
	'logistic regression models trained by scoring.train(); at most one is active';
COMMENT ON COLUMN scoring.model.weights IS
	'coefficient of each feature: "field=value" for categories, "field" for standardised numbers, "field=[a, b)" for ranges of numbers';
COMMENT ON COLUMN scoring.model.numeric_features IS
	'per numeric feature: {"mean", "std", "min", "max", "log"}: standardises the value, or its signed log sign(x)*ln(1+|x|) when log is true (skewed money and counts); optional "cuts": increasing numbers that cut it into ranges, weighted as "field=(-inf, c1)", "field=[c1, c2)", ..., "field=[cn, +inf)"';
COMMENT ON COLUMN scoring.model.ltv IS
	'lifetime uplift per client segment, added to potential profit';

CREATE UNIQUE INDEX model_one_active ON scoring.model (active) WHERE active;

/* ---------------------------------------------------------------------
 * C functions
 * ------------------------------------------------------------------- */

CREATE FUNCTION scoring.train(since timestamptz, until timestamptz,
							  options jsonb DEFAULT '{}')
RETURNS int
AS 'MODULE_PATHNAME', 'scoring_train'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION scoring.train(timestamptz, timestamptz, jsonb) IS
	'fits a model on leads closed as won/lost created in [since, until), activates it';

CREATE FUNCTION scoring.predict(features jsonb, client_id bigint DEFAULT NULL,
								model_id int DEFAULT NULL)
RETURNS float8
AS 'MODULE_PATHNAME', 'scoring_predict'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION scoring.predict(jsonb, bigint, int) IS
	'p_win of a would-be lead given as one JSON object (shop, channel, category, brand, budget and free features)';

CREATE FUNCTION scoring.explain(lead_id bigint)
RETURNS TABLE (feature text, value text, contribution float8)
AS 'MODULE_PATHNAME', 'scoring_explain'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 40;
COMMENT ON FUNCTION scoring.explain(bigint) IS
	'contributions (log-odds) of each feature to the lead''s score, largest first';

CREATE FUNCTION scoring.lead_score_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_lead_score_trigger'
LANGUAGE C;

CREATE FUNCTION scoring.config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_config_changed'
LANGUAGE C;

CREATE FUNCTION scoring.client_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_client_changed'
LANGUAGE C;

CREATE FUNCTION scoring.lead_versions_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_lead_versions_changed'
LANGUAGE C;

CREATE FUNCTION scoring.lead_inserted_replicated()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_lead_inserted_replicated'
LANGUAGE C;

CREATE FUNCTION scoring.history_cache_stats(OUT preloaded boolean, OUT clients bigint,
											OUT reused bigint, OUT taken_in bigint,
											OUT topped_up bigint, OUT walked bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'scoring_history_cache_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION scoring.history_cache_stats() IS
	'this session''s kept client histories: whether scoring is preloaded, clients kept, and how its single-row leads counted their history (reused as kept, of which taken_in after adding the one lead published since, topped up by a short walk, walked whole)';

/* ---------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------- */

CREATE FUNCTION scoring.rescore(only_open boolean DEFAULT true)
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
	WITH touched AS (
		UPDATE scoring.lead SET features = features
		 WHERE NOT only_open
			OR status IN ('draft', 'new', 'queued', 'assigned', 'auto', 'accepted')
		RETURNING 1
	)
	SELECT count(*) FROM touched;
$$;
COMMENT ON FUNCTION scoring.rescore(boolean) IS
	'rescores leads (open ones by default) with the active model; frozen routing scores stay';

CREATE FUNCTION scoring.suggest_bands(since timestamptz, until timestamptz,
									  shares float8[] DEFAULT '{0.05,0.20,0.50,0.85}')
RETURNS TABLE (priority smallint, min_expected_profit numeric)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT s.i::smallint,
		   round(percentile_disc(1 - s.share) WITHIN GROUP (ORDER BY l.expected_profit))
	  FROM unnest(shares) WITH ORDINALITY AS s(share, i)
	  JOIN scoring.lead l ON l.expected_profit IS NOT NULL
	 WHERE l.created_at >= since AND l.created_at < until
	 GROUP BY s.i, s.share
	 ORDER BY s.i;
$$;
COMMENT ON FUNCTION scoring.suggest_bands(timestamptz, timestamptz, float8[]) IS
	'band thresholds so that the given cumulative shares of leads reach priorities 1..4';

/* ---------------------------------------------------------------------
 * Triggers
 * ------------------------------------------------------------------- */

-- scores a lead whose inputs are set, then routes it when it becomes ready
-- (closed_at too: a close may change the histories an import has counted)
CREATE TRIGGER lead_score
	BEFORE INSERT OR DELETE OR UPDATE OF client_id, created_at, shop, channel,
		category, brand, budget, features, status, assignee_id, closed_at
	ON scoring.lead
	FOR EACH ROW EXECUTE FUNCTION scoring.lead_score_trigger();

-- every backend drops its cached model and configuration when these change
CREATE TRIGGER model_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.model FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();
CREATE TRIGGER brand_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.brand FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();
CREATE TRIGGER priority_band_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.priority_band FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();
CREATE TRIGGER refusal_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.refusal_rule FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();
CREATE TRIGGER setting_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.setting FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();

-- every backend drops its copy of the clients' scoring attributes when one
-- changes or a client goes (TRUNCATE and DDL invalidate by themselves; an
-- insert needs nothing: only clients that exist are kept); ALWAYS, so that
-- logical replication's apply (session_replication_role replica) fires them,
-- and per row, as the apply fires no statement triggers (the invalidations
-- of one transaction are sent once)
CREATE TRIGGER client_changed AFTER UPDATE ON scoring.client FOR EACH ROW
	WHEN (OLD.client_id IS DISTINCT FROM NEW.client_id
		  OR OLD.kind IS DISTINCT FROM NEW.kind
		  OR OLD.industry IS DISTINCT FROM NEW.industry
		  OR OLD.okved IS DISTINCT FROM NEW.okved
		  OR OLD.core_industry IS DISTINCT FROM NEW.core_industry
		  OR OLD.annual_turnover IS DISTINCT FROM NEW.annual_turnover)
	EXECUTE FUNCTION scoring.client_changed();
CREATE TRIGGER client_deleted AFTER DELETE ON scoring.client
	FOR EACH ROW EXECUTE FUNCTION scoring.client_changed();
ALTER TABLE scoring.client ENABLE ALWAYS TRIGGER client_changed;
ALTER TABLE scoring.client ENABLE ALWAYS TRIGGER client_deleted;

-- every backend forgets which leads its history walks found visible when
-- leads are updated or deleted (src/visible.c): the statement trigger
-- fires for every session (ALWAYS: also with session_replication_role
-- replica), the row trigger for logical replication's apply, which fires
-- row triggers only
CREATE TRIGGER lead_versions_changed AFTER UPDATE OR DELETE ON scoring.lead
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_versions_changed();
CREATE TRIGGER lead_versions_replicated AFTER UPDATE OR DELETE ON scoring.lead
	FOR EACH ROW EXECUTE FUNCTION scoring.lead_versions_changed();
ALTER TABLE scoring.lead ENABLE ALWAYS TRIGGER lead_versions_changed;
ALTER TABLE scoring.lead ENABLE REPLICA TRIGGER lead_versions_replicated;

-- with scoring preloaded, backends keep the client histories they counted
-- and learn of new leads through shared memory (src/history_cache.c);
-- lead_score publishes the leads it scores, this trigger those inserted
-- where lead_score does not fire: with session_replication_role replica,
-- as logical replication's apply inserts
CREATE TRIGGER lead_inserted_replicated AFTER INSERT ON scoring.lead
	FOR EACH ROW EXECUTE FUNCTION scoring.lead_inserted_replicated();
ALTER TABLE scoring.lead ENABLE REPLICA TRIGGER lead_inserted_replicated;

/* ---------------------------------------------------------------------
 * Routing: managers, their presence and load, routes, the decision log
 * ------------------------------------------------------------------- */

CREATE TABLE scoring.manager (
	manager_id	int PRIMARY KEY
		CONSTRAINT manager_id_positive CHECK (manager_id > 0),
	login		name,
	full_name	text,
	tier		text NOT NULL,
	skills		text[] NOT NULL DEFAULT '{}',
	shift_start time NOT NULL DEFAULT '09:00',
	shift_end	time NOT NULL DEFAULT '18:00',
	lunch_start time,
	lunch_end	time,
	time_zone	text NOT NULL DEFAULT 'Europe/Moscow'
		CONSTRAINT manager_time_zone_valid CHECK (scoring.time_zone_valid(time_zone)),
	max_open_leads int
		CONSTRAINT manager_max_open_leads_positive CHECK (max_open_leads >= 0),
	active		boolean NOT NULL DEFAULT true,
	CONSTRAINT manager_shift_not_empty CHECK (shift_start <> shift_end),
	CONSTRAINT manager_lunch_complete CHECK ((lunch_start IS NULL) = (lunch_end IS NULL)),
	CONSTRAINT manager_lunch_in_order CHECK (lunch_start < lunch_end)
);
COMMENT ON TABLE scoring.manager IS
	'sales managers; shift and lunch are in the manager''s own time zone, a shift may cross midnight';

CREATE TABLE scoring.presence (
	manager_id	int PRIMARY KEY REFERENCES scoring.manager ON DELETE CASCADE,
	on_call		boolean NOT NULL DEFAULT false,
	last_activity timestamptz,
	status		text NOT NULL DEFAULT 'online'
		CONSTRAINT presence_status_valid CHECK (status IN ('online', 'away', 'offline'))
);
COMMENT ON TABLE scoring.presence IS
	'present = on a call, or active within presence_timeout, and not away or offline';

/*
 * The working day of a manager at a moment: the local date, or the day
 * before for the part of a night shift after midnight.  Loads are counted
 * per working day, so late starters catch up by the end of their day.
 */
CREATE FUNCTION scoring.working_day(time_zone text, shift_start time,
									shift_end time, at timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT ((at AT TIME ZONE time_zone)
			- CASE WHEN shift_start > shift_end
					AND (at AT TIME ZONE time_zone)::time < shift_start
				   THEN interval '1 day' ELSE interval '0' END)::date
$$;

CREATE TABLE scoring.manager_load (
	manager_id	int PRIMARY KEY REFERENCES scoring.manager ON DELETE CASCADE,
	open_leads	int NOT NULL DEFAULT 0,
	day			date,
	day_leads	int NOT NULL DEFAULT 0,
	day_profit	numeric NOT NULL DEFAULT 0
);
COMMENT ON TABLE scoring.manager_load IS
	'maintained by the lead trigger: open (assigned or accepted) leads, and leads received in the manager''s working day';

CREATE TABLE scoring.route (
	position	int PRIMARY KEY,
	condition	jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT route_condition_valid CHECK (scoring.condition_valid(condition)),
	tier		text,
	required_skill text
);
COMMENT ON TABLE scoring.route IS
	'routes tried in position order, the first matching decides; tier NULL = any tier; empty table = the default routes of scoring.routes';

CREATE VIEW scoring.routes AS
	SELECT position, condition, tier, required_skill, false AS builtin
	  FROM scoring.route
	UNION ALL
	SELECT d.position, d.condition, d.tier, NULL, true
	  FROM (VALUES (1, '{"budget": {"lt": 100000}}'::jsonb, 'junior'),
				   (2, '{"budget": {"lt": 1000000}}', 'middle'),
				   (3, '{}', 'senior')) AS d(position, condition, tier)
	 WHERE NOT EXISTS (SELECT FROM scoring.route);
COMMENT ON VIEW scoring.routes IS
	'the routes in force: the user''s, or the defaults by budget while scoring.route is empty';

CREATE INDEX lead_queued_idx ON scoring.lead (priority, created_at) WHERE status = 'queued';
CREATE INDEX lead_assigned_idx ON scoring.lead (assigned_at) WHERE status = 'assigned';

CREATE TABLE scoring.assignment_log (
	log_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	lead_id		bigint NOT NULL,
	at			timestamptz NOT NULL,
	event		text NOT NULL
		CONSTRAINT assignment_log_event_valid CHECK (event IN ('assigned', 'queued', 'auto',
			'reassigned', 'accepted')),
	manager_id	int,
	route_position int,
	tier		text,
	required_skill text,
	candidates	jsonb NOT NULL DEFAULT '[]',
	reason		text
);
CREATE INDEX assignment_log_lead_idx ON scoring.assignment_log (lead_id);
COMMENT ON TABLE scoring.assignment_log IS
	'every routing decision with the route, the candidates with their loads and why the others were excluded';
COMMENT ON COLUMN scoring.assignment_log.candidates IS
	'[{"manager_id": 3, "load": 12, "open": 4}, {"manager_id": 5, "excluded": "lunch"}, ...]';

CREATE FUNCTION scoring.manager_load_init()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	INSERT INTO scoring.manager_load (manager_id)
	SELECT manager_id FROM new_managers
	ON CONFLICT (manager_id) DO NOTHING;
	RETURN NULL;
END;
$$;

CREATE TRIGGER manager_load_init AFTER INSERT ON scoring.manager
	REFERENCING NEW TABLE AS new_managers
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.manager_load_init();

CREATE TRIGGER route_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON scoring.route FOR EACH STATEMENT EXECUTE FUNCTION scoring.config_changed();

/*
 * Recomputes the managers' loads from the leads they hold: after a restore
 * made with triggers disabled, or to check the counters.  The day counters
 * then count the day's leads each manager still holds; the trigger counts
 * the leads a manager received, so after a lead was moved away or deleted
 * today the two differ and this returns those managers.  Returns how many
 * managers' rows changed.
 */
CREATE FUNCTION scoring.rebuild_loads(now timestamptz DEFAULT now())
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
	WITH actual AS (
		SELECT m.manager_id,
			   scoring.working_day(m.time_zone, m.shift_start, m.shift_end,
								   rebuild_loads.now) AS day,
			   count(l.lead_id) FILTER (WHERE l.status IN ('assigned', 'accepted'))::int
				   AS open_leads,
			   count(l.lead_id) FILTER (WHERE scoring.working_day(m.time_zone, m.shift_start,
							m.shift_end, l.assigned_at)
							= scoring.working_day(m.time_zone, m.shift_start,
							m.shift_end, rebuild_loads.now))::int AS day_leads,
			   coalesce(sum(l.routed_expected_profit) FILTER (
							WHERE scoring.working_day(m.time_zone, m.shift_start,
								m.shift_end, l.assigned_at)
							= scoring.working_day(m.time_zone, m.shift_start,
								m.shift_end, rebuild_loads.now)), 0) AS day_profit
		  FROM scoring.manager m
		  LEFT JOIN scoring.lead l ON l.assignee_id = m.manager_id
		 GROUP BY m.manager_id
	), upserted AS (
		INSERT INTO scoring.manager_load AS ml (manager_id, open_leads, day, day_leads,
												day_profit)
		SELECT manager_id, open_leads, day, day_leads, day_profit FROM actual
		ON CONFLICT (manager_id) DO UPDATE
		   SET open_leads = excluded.open_leads, day = excluded.day,
			   day_leads = excluded.day_leads, day_profit = excluded.day_profit
		 WHERE (ml.open_leads, ml.day, ml.day_leads, ml.day_profit)
			   IS DISTINCT FROM (excluded.open_leads, excluded.day, excluded.day_leads,
								 excluded.day_profit)
		RETURNING 1
	)
	SELECT count(*)::int FROM upserted;
$$;
COMMENT ON FUNCTION scoring.rebuild_loads(timestamptz) IS
	'recomputes manager_load from the leads each manager holds (after a restore with triggers disabled); returns the rows changed';

/* Raises SC004 for a manager that does not exist */
CREATE FUNCTION scoring.require_manager(manager_id int)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM scoring.manager m WHERE m.manager_id = require_manager.manager_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'SC004',
			MESSAGE = format('manager %s does not exist', require_manager.manager_id),
			HINT = 'Add the manager to scoring.manager first.';
	END IF;
END;
$$;

CREATE FUNCTION scoring.heartbeat(manager_id int, on_call boolean DEFAULT NULL,
								  at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM scoring.require_manager(heartbeat.manager_id);
	INSERT INTO scoring.presence AS p (manager_id, on_call, last_activity, status)
	VALUES (heartbeat.manager_id, coalesce(heartbeat.on_call, false), heartbeat.at, 'online')
	ON CONFLICT ON CONSTRAINT presence_pkey DO UPDATE
	   SET on_call = coalesce(heartbeat.on_call, p.on_call),
		   last_activity = greatest(p.last_activity, heartbeat.at),
		   status = 'online';
END;
$$;
COMMENT ON FUNCTION scoring.heartbeat(int, boolean, timestamptz) IS
	'presence signal from the CRM or telephony: the manager is active (and on a call or not)';

CREATE FUNCTION scoring.set_presence(manager_id int, status text,
									 at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM scoring.require_manager(set_presence.manager_id);
	INSERT INTO scoring.presence AS p (manager_id, last_activity, status)
	VALUES (set_presence.manager_id, set_presence.at, set_presence.status)
	ON CONFLICT ON CONSTRAINT presence_pkey DO UPDATE
	   SET status = set_presence.status,
		   on_call = CASE WHEN set_presence.status = 'online' THEN p.on_call ELSE false END,
		   -- coming back online is activity
		   last_activity = CASE WHEN set_presence.status = 'online'
								THEN greatest(p.last_activity, set_presence.at)
								ELSE p.last_activity END;
END;
$$;
COMMENT ON FUNCTION scoring.set_presence(int, text, timestamptz) IS
	'the manager marks themself online, away (lunch, a meeting) or offline';

CREATE FUNCTION scoring.dispatch(now timestamptz DEFAULT now())
RETURNS int
AS 'MODULE_PATHNAME', 'scoring_dispatch'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION scoring.dispatch(timestamptz) IS
	'moves leads not accepted within accept_timeout to someone else, then places queued leads, priority first, oldest first';

CREATE FUNCTION scoring.accept(lead_id bigint, manager_id int DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	l record;
BEGIN
	SELECT status, assignee_id INTO l
	  FROM scoring.lead WHERE lead.lead_id = accept.lead_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('lead %s does not exist', accept.lead_id);
	END IF;
	IF l.status <> 'assigned' OR (accept.manager_id IS NOT NULL
								  AND l.assignee_id IS DISTINCT FROM accept.manager_id) THEN
		RAISE EXCEPTION USING ERRCODE = 'SC005',
			MESSAGE = format('lead %s is not waiting for %s', accept.lead_id,
							 coalesce('manager ' || accept.manager_id, 'acceptance')),
			DETAIL = format('Its status is %s and its assignee is %s.', l.status,
							coalesce(l.assignee_id::text, 'nobody')),
			HINT = 'A lead not accepted within accept_timeout goes to someone else.';
	END IF;
	UPDATE scoring.lead SET status = 'accepted' WHERE lead.lead_id = accept.lead_id;
	INSERT INTO scoring.assignment_log (lead_id, at, event, manager_id)
	VALUES (accept.lead_id, scoring.clock(), 'accepted', l.assignee_id);
END;
$$;
COMMENT ON FUNCTION scoring.accept(bigint, int) IS
	'the assigned manager took the lead; with manager_id, only that manager may';

SELECT pg_catalog.pg_extension_config_dump('scoring.manager', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.route', '');

/* ---------------------------------------------------------------------
 * Active sales: touches, company claims and the free pool
 * ------------------------------------------------------------------- */

CREATE TABLE scoring.touch (
	touch_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	client_id	bigint NOT NULL REFERENCES scoring.client,
	manager_id	int REFERENCES scoring.manager,
	at			timestamptz NOT NULL DEFAULT now(),
	kind		text NOT NULL
		CONSTRAINT touch_kind_valid CHECK (kind IN ('call_connected', 'call_missed',
			'email_out', 'email_in', 'meeting')),
	note		text
);
CREATE INDEX touch_client_idx ON scoring.touch (client_id, at);
COMMENT ON TABLE scoring.touch IS
	'calls, e-mails and meetings; a connected call on a free company claims it, the owner''s touches extend the claim';

CREATE TABLE scoring.claim (
	client_id	bigint PRIMARY KEY REFERENCES scoring.client,
	manager_id	int NOT NULL REFERENCES scoring.manager,
	claimed_at	timestamptz NOT NULL,
	last_touch_at timestamptz NOT NULL,
	expires_at	timestamptz NOT NULL
);
CREATE INDEX claim_expires_idx ON scoring.claim (expires_at);
CREATE INDEX claim_manager_idx ON scoring.claim (manager_id);
COMMENT ON TABLE scoring.claim IS
	'who owns which company for active sales, until claim_period after the owner''s latest touch';

CREATE TABLE scoring.claim_history (
	history_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	client_id	bigint NOT NULL,
	manager_id	int NOT NULL,
	claimed_at	timestamptz NOT NULL,
	released_at timestamptz NOT NULL,
	reason		text NOT NULL
		CONSTRAINT claim_history_reason_valid CHECK (reason IN ('expired', 'released',
			'transferred'))
);
CREATE INDEX claim_history_client_idx ON scoring.claim_history (client_id, released_at);
CREATE INDEX claim_history_manager_idx ON scoring.claim_history (manager_id, released_at);
COMMENT ON TABLE scoring.claim_history IS 'every claim that ended, and why';
COMMENT ON COLUMN scoring.client.claimed IS
	'kept by triggers on scoring.claim, so that the free pool is one index scan';

CREATE FUNCTION scoring.claim_flag()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE scoring.client c SET claimed = true
		  FROM new_claims n WHERE c.client_id = n.client_id AND NOT c.claimed;
	ELSE
		UPDATE scoring.client c SET claimed = false
		  FROM old_claims o WHERE c.client_id = o.client_id AND c.claimed
		   AND NOT EXISTS (SELECT FROM scoring.claim k WHERE k.client_id = o.client_id);
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER claim_flag_insert AFTER INSERT ON scoring.claim
	REFERENCING NEW TABLE AS new_claims
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.claim_flag();
CREATE TRIGGER claim_flag_delete AFTER DELETE ON scoring.claim
	REFERENCING OLD TABLE AS old_claims
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.claim_flag();

/* Raises the error of a claim that cannot be made */
CREATE FUNCTION scoring.claim_refused(client_id bigint, manager_id int, now timestamptz)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	c record;
	cap int;
	cooldown interval;
	lapsed timestamptz;
	held int;
BEGIN
	SELECT manager_id AS owner, expires_at INTO c FROM scoring.claim
	 WHERE claim.client_id = claim_refused.client_id;
	IF FOUND AND c.owner <> claim_refused.manager_id THEN
		RAISE EXCEPTION USING ERRCODE = 'SC007',
			MESSAGE = format('company %s is claimed by manager %s until %s',
							 claim_refused.client_id, c.owner, c.expires_at),
			HINT = 'The claim ends two months after the owner''s latest touch; the head of sales can release or transfer it.';
	END IF;
	IF NOT EXISTS (SELECT FROM scoring.client WHERE client.client_id = claim_refused.client_id
					  AND pool_eligible) THEN
		RAISE EXCEPTION USING ERRCODE = 'SC006',
			MESSAGE = format('company %s is not in the free pool', claim_refused.client_id),
			HINT = 'scoring.refresh_pool() chooses the companies of the pool; scoring.free_companies lists them.';
	END IF;
	SELECT (value #>> '{}')::numeric::int INTO cap FROM scoring.settings WHERE name = 'max_claims';
	SELECT count(*) INTO held FROM scoring.claim WHERE claim.manager_id = claim_refused.manager_id;
	IF cap IS NOT NULL AND held >= cap THEN
		RAISE EXCEPTION USING ERRCODE = 'SC008',
			MESSAGE = format('manager %s already holds %s claims, the most allowed',
							 claim_refused.manager_id, held),
			HINT = 'Let a claim go or ask for a higher max_claims setting.';
	END IF;
	SELECT (value #>> '{}')::interval INTO cooldown FROM scoring.settings
	 WHERE name = 'claim_cooldown';
	SELECT max(released_at) INTO lapsed FROM scoring.claim_history h
	 WHERE h.client_id = claim_refused.client_id AND h.manager_id = claim_refused.manager_id
	   AND h.reason = 'expired';
	IF lapsed IS NOT NULL AND lapsed + cooldown > claim_refused.now THEN
		RAISE EXCEPTION USING ERRCODE = 'SC009',
			MESSAGE = format('manager %s let company %s go on %s and may claim it again from %s',
							 claim_refused.manager_id, claim_refused.client_id,
							 lapsed, lapsed + cooldown);
	END IF;
END;
$$;

/*
 * Claims a free company for a manager.  The manager's advisory lock makes
 * the claim cap exact; INSERT ... ON CONFLICT makes two managers racing
 * for one company end with one owner and one clear error.
 */
CREATE FUNCTION scoring.claim(client_id bigint, manager_id int,
							  now timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	period interval;
	expiry timestamptz;
BEGIN
	PERFORM scoring.require_manager(claim.manager_id);
	PERFORM pg_advisory_xact_lock(hashtext('scoring.claim'), claim.manager_id);
	PERFORM scoring.expire_claim(claim.client_id, claim.now);

	SELECT expires_at INTO expiry FROM scoring.claim c
	 WHERE c.client_id = claim.client_id AND c.manager_id = claim.manager_id;
	IF FOUND THEN
		RETURN expiry;			-- the owner again: nothing changes
	END IF;

	PERFORM scoring.claim_refused(claim.client_id, claim.manager_id, claim.now);
	SELECT (value #>> '{}')::interval INTO period FROM scoring.settings WHERE name = 'claim_period';
	INSERT INTO scoring.claim AS c (client_id, manager_id, claimed_at, last_touch_at, expires_at)
	VALUES (claim.client_id, claim.manager_id, claim.now, claim.now, claim.now + period)
	ON CONFLICT ON CONSTRAINT claim_pkey DO NOTHING
	RETURNING c.expires_at INTO expiry;
	IF expiry IS NULL THEN
		-- another manager's claim committed first: say who owns it now
		PERFORM scoring.claim_refused(claim.client_id, claim.manager_id, claim.now);
		SELECT c.expires_at INTO expiry FROM scoring.claim c
		 WHERE c.client_id = claim.client_id;
	END IF;
	RETURN expiry;
END;
$$;
COMMENT ON FUNCTION scoring.claim(bigint, int, timestamptz) IS
	'claims a free company for claim_period; an error naming the owner when it is owned';

CREATE FUNCTION scoring.release(client_id bigint, now timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	old record;
BEGIN
	DELETE FROM scoring.claim c WHERE c.client_id = release.client_id
	RETURNING c.manager_id, c.claimed_at INTO old;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	INSERT INTO scoring.claim_history (client_id, manager_id, claimed_at, released_at, reason)
	VALUES (release.client_id, old.manager_id, old.claimed_at, release.now, 'released');
	RETURN true;
END;
$$;
COMMENT ON FUNCTION scoring.release(bigint, timestamptz) IS
	'the head of sales returns a company to the free pool; false when it was not claimed';

/*
 * Ends a claim that expired by now but was not released yet (the daily job
 * has not run): it is over, whoever asks.
 */
CREATE FUNCTION scoring.expire_claim(client_id bigint, now timestamptz)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
	WITH gone AS (
		DELETE FROM scoring.claim c
		 WHERE c.client_id = expire_claim.client_id AND c.expires_at <= expire_claim.now
		RETURNING c.client_id, c.manager_id, c.claimed_at, c.expires_at
	)
	INSERT INTO scoring.claim_history (client_id, manager_id, claimed_at, released_at, reason)
	SELECT client_id, manager_id, claimed_at, expires_at, 'expired' FROM gone;
$$;

CREATE FUNCTION scoring.transfer(client_id bigint, manager_id int,
								 now timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	old record;
	period interval;
	expiry timestamptz;
BEGIN
	PERFORM scoring.require_manager(transfer.manager_id);
	SELECT (value #>> '{}')::interval INTO period FROM scoring.settings WHERE name = 'claim_period';
	PERFORM scoring.expire_claim(transfer.client_id, transfer.now);
	LOOP
		SELECT c.manager_id, c.expires_at INTO old FROM scoring.claim c
		 WHERE c.client_id = transfer.client_id FOR UPDATE;
		IF FOUND AND old.manager_id = transfer.manager_id THEN
			RETURN old.expires_at;		-- already theirs
		END IF;
		DELETE FROM scoring.claim c WHERE c.client_id = transfer.client_id
		RETURNING c.manager_id, c.claimed_at INTO old;
		IF FOUND THEN
			INSERT INTO scoring.claim_history (client_id, manager_id, claimed_at,
											   released_at, reason)
			VALUES (transfer.client_id, old.manager_id, old.claimed_at, transfer.now,
					'transferred');
		END IF;
		-- a claim made meanwhile by someone else is transferred in turn
		INSERT INTO scoring.claim AS c (client_id, manager_id, claimed_at, last_touch_at,
										expires_at)
		VALUES (transfer.client_id, transfer.manager_id, transfer.now, transfer.now,
				transfer.now + period)
		ON CONFLICT ON CONSTRAINT claim_pkey DO NOTHING
		RETURNING c.expires_at INTO expiry;
		IF expiry IS NOT NULL THEN
			RETURN expiry;
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION scoring.transfer(bigint, int, timestamptz) IS
	'the head of sales gives a company to another manager, whatever its state';

/*
 * A touch claims a free eligible company when it is a connected call, and
 * extends the owner's claim when it is one of claim_touch_kinds.  Touches
 * by others are only recorded.
 */
CREATE FUNCTION scoring.touch_claims()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	period interval;
	kinds jsonb;
BEGIN
	IF NEW.manager_id IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT (value #>> '{}')::interval INTO period FROM scoring.settings WHERE name = 'claim_period';
	SELECT value INTO kinds FROM scoring.settings WHERE name = 'claim_touch_kinds';
	PERFORM scoring.expire_claim(NEW.client_id, NEW.at);

	IF kinds ? NEW.kind THEN
		UPDATE scoring.claim
		   SET last_touch_at = greatest(last_touch_at, NEW.at),
			   expires_at = greatest(last_touch_at, NEW.at) + period
		 WHERE client_id = NEW.client_id AND manager_id = NEW.manager_id;
		IF FOUND THEN
			RETURN NULL;
		END IF;
	END IF;

	IF NEW.kind = 'call_connected' THEN
		BEGIN
			PERFORM scoring.claim(NEW.client_id, NEW.manager_id, NEW.at);
		EXCEPTION WHEN SQLSTATE 'SC006' OR SQLSTATE 'SC007' OR SQLSTATE 'SC008'
					OR SQLSTATE 'SC009' THEN
			NULL;				-- owned, not in the pool, capped: only recorded
		END;
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER touch_claims AFTER INSERT ON scoring.touch
	FOR EACH ROW EXECUTE FUNCTION scoring.touch_claims();

/*
 * Releases every claim that expired by now in one statement: a touch that
 * extends a claim first keeps it (the DELETE re-checks the row it waited
 * for), and two runs never release a claim twice.
 */
CREATE FUNCTION scoring.release_stale_claims(now timestamptz DEFAULT now())
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
	WITH gone AS (
		DELETE FROM scoring.claim c WHERE c.expires_at <= release_stale_claims.now
		RETURNING c.client_id, c.manager_id, c.claimed_at, c.expires_at
	), logged AS (
		INSERT INTO scoring.claim_history (client_id, manager_id, claimed_at,
										   released_at, reason)
		SELECT client_id, manager_id, claimed_at, expires_at, 'expired' FROM gone
		RETURNING 1
	)
	SELECT count(*)::int FROM logged;
$$;
COMMENT ON FUNCTION scoring.release_stale_claims(timestamptz) IS
	'returns companies with no qualifying touch for claim_period to the free pool; run daily';

/*
 * Marks the companies worth active sales: companies whose segment
 * (industry, core or not) wins at least min_segment_win_rate of its leads,
 * or that won before themselves, with a turnover of at least min_turnover
 * when it is known.  The rule it used is kept in the setting pool_rule.
 */
CREATE FUNCTION scoring.refresh_pool(rule jsonb DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	r jsonb;
	n int;
BEGIN
	r := coalesce(rule, (SELECT value FROM scoring.settings WHERE name = 'pool_rule'));
	IF jsonb_typeof(r) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'pool rule must be a JSON object',
			HINT = 'For example {"min_segment_win_rate": 0.15, "min_turnover": 10000000}.';
	END IF;

	WITH segment AS (
		SELECT c.industry, c.core_industry,
			   avg((l.status = 'won')::int) AS win_rate
		  FROM scoring.lead l JOIN scoring.client c USING (client_id)
		 WHERE c.kind = 'company' AND l.status IN ('won', 'lost')
		 GROUP BY 1, 2
	), history AS (
		SELECT client_id,
			   bool_or(status = 'won') AS won_before,
			   sum(won_profit) FILTER (WHERE status = 'won'
							AND closed_at >= scoring.clock() - interval '12 months') AS won_12m,
			   sum(expected_profit) FILTER (WHERE status IN ('draft', 'new', 'queued',
							'assigned', 'auto', 'accepted')) AS open_expected
		  FROM scoring.lead WHERE client_id IS NOT NULL
		 GROUP BY client_id
	), decided AS (
		SELECT c.client_id,
			   coalesce(c.kind = 'company'
			   AND (c.annual_turnover IS NULL
					OR c.annual_turnover >= coalesce((r ->> 'min_turnover')::numeric, 0))
			   AND (coalesce(h.won_before, false)
					OR s.win_rate >= coalesce((r ->> 'min_segment_win_rate')::numeric, 0)),
			   false) AS eligible,
			   coalesce(h.won_12m, 0) + coalesce(h.open_expected, 0) AS potential
		  FROM scoring.client c
		  LEFT JOIN segment s ON s.industry IS NOT DISTINCT FROM c.industry
							 AND s.core_industry IS NOT DISTINCT FROM c.core_industry
		  LEFT JOIN history h ON h.client_id = c.client_id
	)
	UPDATE scoring.client c SET pool_eligible = d.eligible, potential = d.potential
	  FROM decided d
	 WHERE d.client_id = c.client_id
	   AND (c.pool_eligible IS DISTINCT FROM d.eligible
			OR c.potential IS DISTINCT FROM d.potential);

	INSERT INTO scoring.setting (name, value) VALUES ('pool_rule', r)
	ON CONFLICT (name) DO UPDATE SET value = excluded.value;
	SELECT count(*) INTO n FROM scoring.client WHERE pool_eligible;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION scoring.refresh_pool(jsonb) IS
	'marks the companies of the free pool by the rule (default: the setting pool_rule), returns how many are eligible';

CREATE VIEW scoring.free_companies AS
	SELECT c.client_id, c.name, c.industry, c.core_industry, c.annual_turnover,
		   c.potential, h.manager_id AS last_owner, h.released_at AS last_released_at,
		   t.last_touch_at
	  FROM scoring.client c
	  LEFT JOIN LATERAL (
			SELECT ch.manager_id, ch.released_at FROM scoring.claim_history ch
			 WHERE ch.client_id = c.client_id
			 ORDER BY ch.released_at DESC LIMIT 1) h ON true
	  LEFT JOIN LATERAL (
			SELECT max(tt.at) AS last_touch_at FROM scoring.touch tt
			 WHERE tt.client_id = c.client_id) t ON true
	 WHERE c.pool_eligible AND NOT c.claimed
	 ORDER BY c.potential DESC NULLS LAST, c.client_id;
COMMENT ON VIEW scoring.free_companies IS
	'companies of the free pool nobody owns, best first by potential (set by refresh_pool)';

CREATE INDEX client_pool_idx ON scoring.client (potential DESC NULLS LAST, client_id)
	WHERE pool_eligible AND NOT claimed;

/*
 * Registers the periodic functions with pg_cron when it is installed in
 * this database; running it again changes nothing.
 */
CREATE FUNCTION scoring.schedule_jobs()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	job record;
BEGIN
	FOR job IN
		SELECT * FROM (VALUES
			('scoring-release-stale-claims', '17 3 * * *', 'SELECT scoring.release_stale_claims()'),
			('scoring-dispatch', '* * * * *', 'SELECT scoring.dispatch()'),
			('scoring-run-sequences', '* * * * *', 'SELECT scoring.run_sequences()'),
			('scoring-compact-totals', '*/10 * * * *', 'SELECT scoring.compact_totals()')
		) AS j(name, schedule, command)
	LOOP
		IF to_regnamespace('cron') IS NULL THEN
			RAISE NOTICE 'pg_cron is not installed in this database: schedule "%" yourself at "%"',
				job.command, job.schedule
				USING HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, CREATE EXTENSION pg_cron, and call scoring.schedule_jobs() again.';
		ELSE
			EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING job.name, job.schedule, job.command;
			RETURN NEXT job.name;
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION scoring.schedule_jobs() IS
	'registers release_stale_claims (daily), dispatch and run_sequences (every minute) and compact_totals (every 10 minutes) with pg_cron; returns the job names';

SELECT pg_catalog.pg_extension_config_dump('scoring.touch', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.claim', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.claim_history', '');

/* ---------------------------------------------------------------------
 * Automation: follow-up sequences, the outbox, refusal chains
 * ------------------------------------------------------------------- */

CREATE FUNCTION scoring.render(template text, context jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'scoring_render'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.render(text, jsonb) IS
	'fills {{path}}, {{#list}}..{{/list}} and {{^list}}..{{/list}} of a template from a JSON context';

CREATE FUNCTION scoring.template_valid(template text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'scoring_template_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.template_valid(text) IS
	'true for a well-formed template; raises an error naming the problem otherwise';

CREATE FUNCTION scoring.steps_valid(steps jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	s jsonb;
	i int := 0;
BEGIN
	IF jsonb_typeof(steps) IS DISTINCT FROM 'array' OR jsonb_array_length(steps) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'steps must be a non-empty JSON array',
			HINT = 'Each step is {"delay": "3 days", "subject": "...", "body": "..."}.';
	END IF;
	FOR s IN SELECT * FROM jsonb_array_elements(steps) LOOP
		IF jsonb_typeof(s) IS DISTINCT FROM 'object'
		   OR jsonb_typeof(s -> 'delay') IS DISTINCT FROM 'string'
		   OR jsonb_typeof(s -> 'subject') IS DISTINCT FROM 'string'
		   OR jsonb_typeof(s -> 'body') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = format('step %s must have string delay, subject and body', i);
		END IF;
		BEGIN
			IF (s ->> 'delay')::interval < interval '0' THEN
				RAISE EXCEPTION USING ERRCODE = '22023',
					MESSAGE = format('step %s has a negative delay', i);
			END IF;
			IF (s ->> 'delay')::interval > interval '10 years' THEN
				RAISE EXCEPTION USING ERRCODE = '22023',
					MESSAGE = format('step %s has a delay of more than 10 years', i);
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
					   OR interval_field_overflow THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = format('step %s: "%s" is not an interval', i, s ->> 'delay');
		END;
		PERFORM scoring.template_valid(s ->> 'subject'), scoring.template_valid(s ->> 'body');
		i := i + 1;
	END LOOP;
	RETURN true;
END;
$$;

CREATE TABLE scoring.sequence (
	name		text PRIMARY KEY,
	steps		jsonb NOT NULL
		CONSTRAINT sequence_steps_valid CHECK (scoring.steps_valid(steps)),
	business_days boolean NOT NULL DEFAULT false,
	daily_cap	int
		CONSTRAINT sequence_daily_cap_positive CHECK (daily_cap > 0),
	description text
);
COMMENT ON TABLE scoring.sequence IS
	'chains of messages: each step is sent its delay after the one before (the first, after enrolment)';
COMMENT ON COLUMN scoring.sequence.business_days IS
	'send only on Monday to Friday in the client''s time zone';
COMMENT ON COLUMN scoring.sequence.daily_cap IS
	'the most messages of this sequence per manager (the lead''s assignee) and day';

CREATE TABLE scoring.enrollment (
	enrollment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	lead_id		bigint NOT NULL REFERENCES scoring.lead,
	sequence	text NOT NULL REFERENCES scoring.sequence ON UPDATE CASCADE,
	step		int NOT NULL DEFAULT 0,
	next_at		timestamptz NOT NULL,
	started_at	timestamptz NOT NULL,
	state		text NOT NULL DEFAULT 'active'
		CONSTRAINT enrollment_state_valid CHECK (state IN ('active', 'done', 'stopped')),
	stop_reason text,
	stopped_at	timestamptz
);
CREATE UNIQUE INDEX enrollment_one_active ON scoring.enrollment (lead_id) WHERE state = 'active';
CREATE INDEX enrollment_due_idx ON scoring.enrollment (next_at) WHERE state = 'active';
COMMENT ON TABLE scoring.enrollment IS
	'a lead going through a sequence; at most one active per lead, never for priority 1';

CREATE TABLE scoring.outbox (
	message_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	lead_id		bigint NOT NULL,
	enrollment_id bigint NOT NULL REFERENCES scoring.enrollment,
	step		int NOT NULL,
	to_address	text,
	subject		text NOT NULL,
	body		text NOT NULL,
	created_at	timestamptz NOT NULL,
	sent_at		timestamptz,
	CONSTRAINT outbox_once UNIQUE (enrollment_id, step)
);
CREATE INDEX outbox_unsent_idx ON scoring.outbox (created_at) WHERE sent_at IS NULL;
COMMENT ON TABLE scoring.outbox IS
	'messages for the mailer, the only contract with it: send what has no sent_at, then call mark_sent()';

CREATE TABLE scoring.refusal_reason (
	reason		text PRIMARY KEY,
	sequence	text REFERENCES scoring.sequence ON UPDATE CASCADE,
	description text
);
COMMENT ON TABLE scoring.refusal_reason IS
	'why a lead was refused, and the chain a lead refused for that reason is enrolled in';

/* Priority 1 is worked by a person: no enrolment, whatever the path */
CREATE FUNCTION scoring.enrollment_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p smallint;
BEGIN
	IF NEW.state <> 'active' THEN
		RETURN NEW;
	END IF;
	-- FOR SHARE waits for a rescore in flight, and holds off the next one
	SELECT priority INTO p FROM scoring.lead WHERE lead_id = NEW.lead_id FOR SHARE;
	IF p = 1 THEN
		RAISE EXCEPTION USING ERRCODE = 'SC010',
			MESSAGE = format('lead %s is priority 1: automation is forbidden', NEW.lead_id),
			HINT = 'A person works priority-1 leads.';
	END IF;
	RETURN NEW;
END;
$$;

CREATE TRIGGER enrollment_guard BEFORE INSERT OR UPDATE OF state, lead_id
	ON scoring.enrollment FOR EACH ROW EXECUTE FUNCTION scoring.enrollment_guard();

CREATE FUNCTION scoring.next_send_time(at timestamptz, business_days boolean,
									   time_zone text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN NOT business_days THEN at
				WHEN extract(isodow FROM at AT TIME ZONE time_zone) = 6
				THEN ((at AT TIME ZONE time_zone)::date + 2 + time '09:00') AT TIME ZONE time_zone
				WHEN extract(isodow FROM at AT TIME ZONE time_zone) = 7
				THEN ((at AT TIME ZONE time_zone)::date + 1 + time '09:00') AT TIME ZONE time_zone
				ELSE at END
$$;
COMMENT ON FUNCTION scoring.next_send_time(timestamptz, boolean, text) IS
	'the moment itself, or with business_days Monday 09:00 in time_zone when it falls on a weekend';

CREATE FUNCTION scoring.enroll(lead_id bigint, sequence text, now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	s record;
	l record;
	id bigint;
BEGIN
	SELECT * INTO s FROM scoring.sequence q WHERE q.name = enroll.sequence;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'SC012',
			MESSAGE = format('sequence "%s" does not exist', enroll.sequence),
			HINT = 'SELECT name FROM scoring.sequence lists them; scoring.install_defaults() adds the shipped ones.';
	END IF;
	SELECT ld.status, ld.priority, c.unsubscribed, c.bounced,
		   coalesce(c.time_zone, 'Europe/Moscow') AS time_zone INTO l
	  FROM scoring.lead ld LEFT JOIN scoring.client c USING (client_id)
	 WHERE ld.lead_id = enroll.lead_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('lead %s does not exist', enroll.lead_id);
	END IF;
	IF l.status IN ('won', 'lost') THEN
		RAISE EXCEPTION USING ERRCODE = 'SC013',
			MESSAGE = format('lead %s is closed as %s', enroll.lead_id, l.status);
	END IF;
	IF l.unsubscribed OR l.bounced THEN
		RAISE EXCEPTION USING ERRCODE = 'SC014',
			MESSAGE = format('the client of lead %s %s', enroll.lead_id,
							 CASE WHEN l.unsubscribed THEN 'unsubscribed' ELSE 'has a bouncing address' END);
	END IF;

	-- enrolments of one lead one after the other: a new chain replaces the
	-- one running, also when two calls race
	PERFORM FROM scoring.lead ld WHERE ld.lead_id = enroll.lead_id FOR NO KEY UPDATE;
	UPDATE scoring.enrollment e SET state = 'stopped', stop_reason = 'replaced',
		   stopped_at = enroll.now
	 WHERE e.lead_id = enroll.lead_id AND e.state = 'active';
	INSERT INTO scoring.enrollment (lead_id, sequence, step, next_at, started_at)
	VALUES (enroll.lead_id, enroll.sequence, 0,
			scoring.next_send_time(enroll.now + (s.steps -> 0 ->> 'delay')::interval,
								   s.business_days, l.time_zone),
			enroll.now)
	RETURNING enrollment_id INTO id;
	RETURN id;
END;
$$;
COMMENT ON FUNCTION scoring.enroll(bigint, text, timestamptz) IS
	'starts a sequence for a lead (replacing a running one); an error for priority 1';

/* What a template can use: the lead, its client, purchases, the request */
CREATE FUNCTION scoring.lead_context(lead_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT jsonb_build_object(
		'lead', to_jsonb(l) - 'features',
		'request', l.features,
		'client', to_jsonb(c),
		'manager', (SELECT jsonb_build_object('manager_id', m.manager_id,
											  'full_name', m.full_name, 'login', m.login)
					  FROM scoring.manager m WHERE m.manager_id = l.assignee_id),
		'purchases', coalesce((
			SELECT jsonb_agg(jsonb_build_object('lead_id', p.lead_id,
												'date', p.created_at::date,
												'category', p.category, 'brand', p.brand,
												'budget', p.budget, 'request', p.features)
							 ORDER BY p.created_at DESC)
			  FROM scoring.lead p
			 WHERE p.client_id = l.client_id AND p.status = 'won'
			   AND p.created_at < l.created_at), '[]'))
	  FROM scoring.lead l LEFT JOIN scoring.client c USING (client_id)
	 WHERE l.lead_id = lead_context.lead_id
$$;
COMMENT ON FUNCTION scoring.lead_context(bigint) IS
	'the context of a lead''s messages: lead, request (its features), client, manager, purchases (earlier won leads)';

/*
 * Writes every due step into the outbox.  Enrolments are taken FOR UPDATE
 * SKIP LOCKED and the outbox is unique per enrolment step, so overlapping
 * runs write each message exactly once.  First stops what must stop, then
 * moves weekend sends of business-day sequences to Monday, then sends and
 * advances, keeping each sequence's daily cap per manager.
 */
CREATE FUNCTION scoring.run_sequences(now timestamptz DEFAULT now())
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	n int;
BEGIN
	WITH due AS (
		SELECT e.enrollment_id, e.started_at, l.status, l.priority, l.client_id,
			   c.unsubscribed, c.bounced
		  FROM scoring.enrollment e
		  JOIN scoring.lead l USING (lead_id)
		  LEFT JOIN scoring.client c ON c.client_id = l.client_id
		 WHERE e.state = 'active' AND e.next_at <= run_sequences.now
		   FOR UPDATE OF e SKIP LOCKED
	), why AS (
		SELECT d.enrollment_id,
			   CASE WHEN d.status IN ('won', 'lost') THEN 'closed'
					WHEN d.priority = 1 THEN 'priority_1'
					WHEN d.unsubscribed THEN 'unsubscribed'
					WHEN d.bounced THEN 'bounced'
					WHEN EXISTS (SELECT FROM scoring.touch t
								  WHERE t.client_id = d.client_id AND t.kind = 'email_in'
									AND t.at > d.started_at AND t.at <= run_sequences.now)
					THEN 'replied' END AS reason
		  FROM due d
	)
	UPDATE scoring.enrollment e
	   SET state = 'stopped', stop_reason = w.reason, stopped_at = run_sequences.now
	  FROM why w
	 WHERE w.enrollment_id = e.enrollment_id AND w.reason IS NOT NULL;

	-- a chain whose sequence was shortened under it is done
	UPDATE scoring.enrollment e
	   SET state = 'done'
	  FROM scoring.sequence s
	 WHERE s.name = e.sequence AND e.step >= jsonb_array_length(s.steps)
	   AND e.enrollment_id IN (SELECT d.enrollment_id FROM scoring.enrollment d
								WHERE d.state = 'active' AND d.next_at <= run_sequences.now
								  FOR UPDATE SKIP LOCKED);

	-- business-day chains due on a weekend wait for Monday morning
	UPDATE scoring.enrollment e
	   SET next_at = scoring.next_send_time(run_sequences.now, true,
											coalesce(c.time_zone, 'Europe/Moscow'))
	  FROM scoring.sequence s, scoring.lead l
	  LEFT JOIN scoring.client c ON c.client_id = l.client_id
	 WHERE s.name = e.sequence AND l.lead_id = e.lead_id AND s.business_days
	   AND extract(isodow FROM run_sequences.now
				   AT TIME ZONE coalesce(c.time_zone, 'Europe/Moscow')) >= 6
	   AND e.enrollment_id IN (SELECT d.enrollment_id FROM scoring.enrollment d
								WHERE d.state = 'active' AND d.next_at <= run_sequences.now
								  FOR UPDATE SKIP LOCKED);

	WITH due AS (
		SELECT e.enrollment_id, e.lead_id, e.step, e.next_at, e.sequence, s.steps,
			   s.business_days, s.daily_cap, l.assignee_id,
			   coalesce(c.time_zone, 'Europe/Moscow') AS time_zone
		  FROM scoring.enrollment e
		  JOIN scoring.sequence s ON s.name = e.sequence
		  JOIN scoring.lead l ON l.lead_id = e.lead_id
		  LEFT JOIN scoring.client c ON c.client_id = l.client_id
		 WHERE e.state = 'active' AND e.next_at <= run_sequences.now
		   AND e.step < jsonb_array_length(s.steps)
		   FOR UPDATE OF e SKIP LOCKED
	), sent_today AS (
		-- a manager's day is in the manager's time zone
		SELECT oe.sequence, ol.assignee_id, count(*) AS n
		  FROM scoring.outbox o
		  JOIN scoring.enrollment oe ON oe.enrollment_id = o.enrollment_id
		  JOIN scoring.lead ol ON ol.lead_id = o.lead_id
		  LEFT JOIN scoring.manager m ON m.manager_id = ol.assignee_id
		 WHERE o.created_at >= date_trunc('day', run_sequences.now
											 AT TIME ZONE coalesce(m.time_zone, 'Europe/Moscow'))
							  AT TIME ZONE coalesce(m.time_zone, 'Europe/Moscow')
		   AND o.created_at <= run_sequences.now
		   AND EXISTS (SELECT FROM due WHERE due.daily_cap IS NOT NULL)
		 GROUP BY 1, 2
	), ranked AS (
		SELECT d.*, row_number() OVER (PARTITION BY d.sequence, d.assignee_id
									   ORDER BY d.next_at, d.enrollment_id)
					+ coalesce(t.n, 0) AS nth_today
		  FROM due d
		  LEFT JOIN sent_today t ON t.sequence = d.sequence
								AND t.assignee_id IS NOT DISTINCT FROM d.assignee_id
	), sendable AS (
		SELECT * FROM ranked WHERE daily_cap IS NULL OR nth_today <= daily_cap
	), sent AS (
		INSERT INTO scoring.outbox (lead_id, enrollment_id, step, to_address, subject,
									body, created_at)
		SELECT s.lead_id, s.enrollment_id, s.step, x.ctx #>> '{client,attrs,email}',
			   scoring.render(s.steps -> s.step ->> 'subject', x.ctx),
			   scoring.render(s.steps -> s.step ->> 'body', x.ctx),
			   run_sequences.now
		  -- OFFSET 0: one context per message, not one per use of it
		  FROM sendable s, LATERAL (SELECT scoring.lead_context(s.lead_id) AS ctx OFFSET 0) x
		ON CONFLICT ON CONSTRAINT outbox_once DO NOTHING
		RETURNING 1
	), advanced AS (
		UPDATE scoring.enrollment e
		   SET step = e.step + 1,
			   state = CASE WHEN e.step + 1 >= jsonb_array_length(s.steps)
							THEN 'done' ELSE 'active' END,
			   next_at = CASE WHEN e.step + 1 >= jsonb_array_length(s.steps) THEN e.next_at
							  ELSE scoring.next_send_time(
									run_sequences.now
									+ (s.steps -> (e.step + 1) ->> 'delay')::interval,
									s.business_days, s.time_zone) END
		  FROM sendable s
		 WHERE s.enrollment_id = e.enrollment_id
		RETURNING 1
	)
	SELECT count(*) INTO n FROM sent;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION scoring.run_sequences(timestamptz) IS
	'writes every due message to the outbox exactly once, stops chains on reply, close, unsubscribe, bounce or priority 1; run every minute';

CREATE FUNCTION scoring.mark_sent(message_id bigint, now timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	UPDATE scoring.outbox o SET sent_at = coalesce(o.sent_at, mark_sent.now)
	 WHERE o.message_id = mark_sent.message_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('message %s does not exist', mark_sent.message_id);
	END IF;
END;
$$;
COMMENT ON FUNCTION scoring.mark_sent(bigint, timestamptz) IS
	'the mailer sent a message; calling it again keeps the first time';

/*
 * Automation that follows a lead's changes: a lead turning priority 1
 * stops its chain; a lead refused with a reason gets that reason's chain;
 * a lead handed to automation (priority 5) gets the polite decline.
 */

-- starts the chain of a lead refused or handed to automation, if it has one
-- and may get it (called by the lead triggers)
CREATE FUNCTION scoring.start_automation(l scoring.lead)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	chain text;
BEGIN
	IF l.status = 'refused' THEN
		SELECT sequence INTO chain FROM scoring.refusal_reason WHERE reason = l.refusal_reason;
	ELSIF l.status = 'auto' THEN
		SELECT value #>> '{}' INTO chain FROM scoring.settings WHERE name = 'auto_sequence';
	END IF;
	IF chain IS NOT NULL AND l.priority IS DISTINCT FROM 1
	   AND EXISTS (SELECT FROM scoring.sequence WHERE name = chain)
	   AND NOT EXISTS (SELECT FROM scoring.client c
						WHERE c.client_id = l.client_id AND (c.unsubscribed OR c.bounced)) THEN
		PERFORM scoring.enroll(l.lead_id, chain, scoring.clock());
	END IF;
END;
$$;
COMMENT ON FUNCTION scoring.start_automation(scoring.lead) IS
	'starts the chain of a lead refused (its reason''s) or handed to automation (setting auto_sequence); called by the lead triggers';

CREATE FUNCTION scoring.lead_automation()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.priority = 1 THEN
		UPDATE scoring.enrollment SET state = 'stopped', stop_reason = 'priority_1',
			   stopped_at = scoring.clock()
		 WHERE lead_id = NEW.lead_id AND state = 'active';
		RETURN NULL;
	END IF;
	PERFORM scoring.start_automation(NEW);
	RETURN NULL;
END;
$$;

-- inserted leads: one statement trigger reads the statement's new rows (a
-- row trigger's WHEN clause would be parsed again for every statement)
CREATE FUNCTION scoring.lead_automation_inserted()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_lead_automation_inserted'
LANGUAGE C;

CREATE TRIGGER lead_automation_insert AFTER INSERT ON scoring.lead
	REFERENCING NEW TABLE AS new_leads
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_automation_inserted();
CREATE TRIGGER lead_automation_update AFTER UPDATE ON scoring.lead
	FOR EACH ROW WHEN ((NEW.priority = 1 AND OLD.priority IS DISTINCT FROM 1)
					   OR (NEW.status IN ('auto', 'refused')
						   AND NEW.status IS DISTINCT FROM OLD.status))
	EXECUTE FUNCTION scoring.lead_automation();

/*
 * The shipped chains: 33 refusal reasons, each with its own chain, and the
 * polite decline for leads handed to automation.  They are data the user
 * edits, so CREATE EXTENSION does not insert them (pg_dump would restore
 * them twice); one call does, and never overwrites what is there.
 */
CREATE FUNCTION scoring.install_defaults()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n int;
	greeting constant text :=
		E'Здравствуйте{{#client.name}}, {{client.name}}{{/client.name}}!\n\n';
	signature constant text :=
		E'\n\n{{#purchases.0}}Спасибо, что покупали у нас{{#purchases.0.category}}: {{purchases.0.category}}{{/purchases.0.category}}{{#purchases.0.brand}}, {{purchases.0.brand}}{{/purchases.0.brand}}.\n{{/purchases.0}}'
		'С уважением,\n{{#manager}}{{manager.full_name}}{{/manager}}{{^manager}}отдел продаж{{/manager}}';
BEGIN
	WITH chain (reason, description, subject, first, second, third) AS (VALUES
		('out_of_stock', 'the item asked for is out of stock',
		 'Ваш запрос: {{lead.category}} {{lead.brand}}',
		 'К сожалению, этого товара сейчас нет в наличии. Можем предложить аналог — ответьте на письмо, и мы подберём.',
		 'Вы пока не ответили: может быть, уже нашли аналог сами? Если нет — подскажем.',
		 'Вот подходящий аналог по вашим требованиям — давайте обсудим цену и сроки.'),
		('price_too_high', 'the client found the price too high',
		 'Цена на {{lead.category}}',
		 'Понимаем, что цена показалась высокой. Можем предложить более доступную модель с теми же возможностями.',
		 'Напоминаем о нашем предложении: подберём вариант под ваш бюджет.',
		 'При заказе в этом месяце можем обсудить скидку — напишите, если актуально.'),
		('delivery_too_long', 'the delivery time did not suit',
		 'Сроки поставки: {{lead.category}}',
		 'Сроки поставки вас не устроили — проверим, что есть на складе прямо сейчас.',
		 'Нашли несколько позиций с быстрой отгрузкой — прислать список?',
		 'Если задача ещё актуальна, отгрузим со склада в течение двух дней.'),
		('no_brand_stock', 'no stock of the brand asked for',
		 'Поставка {{lead.brand}}',
		 'Товаров этого бренда сейчас нет на складе. Предлагаем проверенные аналоги других производителей.',
		 'Вы пока не ответили: прислать сравнение аналогов?',
		 'Ожидаем поставку бренда — сообщим, как только он появится.'),
		('chose_competitor', 'the client bought from a competitor',
		 'Спасибо за обращение',
		 'Жаль, что в этот раз не получилось поработать вместе. Расходники и сервис для купленного оборудования — у нас.',
		 'Напоминаем: у нас есть сервис и запчасти для оборудования любых брендов.',
		 'Если понадобятся расходные материалы — ответьте на письмо, пришлём прайс.'),
		('budget_postponed', 'the purchase moved to a later budget',
		 'Закупка {{lead.category}}',
		 'Поняли, что бюджет на закупку будет позже. Подготовим предложение заранее, чтобы вы успели заложить его.',
		 'Когда у вас планируется бюджетирование? Пришлём актуальные цены к этой дате.',
		 'Держим для вас предложение — напишите, когда будете готовы.'),
		('project_cancelled', 'the client''s project was cancelled',
		 'Ваш проект',
		 'Жаль, что проект отменился. Если появится новая задача — будем рады помочь.',
		 'Напоминаем о себе: подбираем оборудование под технические задания.',
		 'Появилась новая задача? Ответьте на письмо — подберём решение.'),
		('no_response', 'the client stopped answering',
		 'Ваш запрос: {{lead.category}}',
		 'Мы не смогли до вас дозвониться. Запрос ещё актуален?',
		 'Вы пока не ответили: может быть, удобнее переписка? Ответьте на это письмо.',
		 'Закрываем запрос. Если он снова станет актуален — просто ответьте.'),
		('wrong_contact', 'the contact was not the decision maker',
		 'Контакт по закупке',
		 'Подскажите, пожалуйста, кто у вас отвечает за закупку оборудования?',
		 'Напоминаем: будем благодарны за контакт ответственного за закупки.',
		 'Если удобнее, перешлите это письмо коллегам из отдела закупок.'),
		('consult_later', 'the client asked to come back later',
		 'Возвращаемся к вашему запросу',
		 'Вы просили вернуться к вопросу позже — напоминаем о себе.',
		 'Готовы ответить на вопросы и подготовить расчёт.',
		 'Если задача снова актуальна — ответьте, подготовим предложение.'),
		('below_min_order', 'the order is below the minimum',
		 'Ваш заказ',
		 'Сумма заказа ниже минимальной для доставки. Можем добавить расходники, чтобы доставка стала бесплатной.',
		 'Собрали для вас набор популярных расходников — прислать?',
		 'Предложение по комплектации заказа ещё в силе.'),
		('payment_terms', 'the payment terms did not suit',
		 'Условия оплаты',
		 'Условия оплаты вас не устроили — обсудим отсрочку или оплату частями.',
		 'Для постоянных клиентов возможна отсрочка платежа — расскажем подробнее.',
		 'Напишите, какие условия оплаты вам удобны.'),
		('needs_certificate', 'a certificate is needed',
		 'Сертификаты на {{lead.category}}',
		 'Пришлём сертификаты и паспорта на оборудование — уточните, какие документы нужны.',
		 'Документы готовы к отправке — напишите, на какой адрес прислать.',
		 'Если нужны другие документы — подскажите, запросим у производителя.'),
		('region_not_served', 'no delivery to the client''s region',
		 'Доставка в ваш регион',
		 'Прямой доставки в ваш регион нет, но можем отправить транспортной компанией.',
		 'Рассчитали стоимость доставки транспортной компанией — прислать?',
		 'Предложение по доставке в силе — ответьте, если актуально.'),
		('private_small_order', 'a private person with a small order',
		 'Ваш заказ',
		 'Спасибо за обращение! Этот товар удобнее всего заказать на маркетплейсе — там быстрая доставка.',
		 'Если понадобится профессиональное оборудование — мы на связи.',
		 'Подписывайтесь на новости: рассказываем о распродажах.'),
		('reseller_price', 'a reseller asked for a dealer price',
		 'Дилерские условия',
		 'Спасибо за интерес к сотрудничеству. Пришлём дилерские условия.',
		 'Напоминаем о дилерской программе: объёмы, скидки, отсрочка.',
		 'Если условия интересны — назначим звонок.'),
		('spec_mismatch', 'the specification did not match',
		 'Подбор по техническому заданию',
		 'Модель не подошла по характеристикам. Пришлите техническое задание — подберём точное решение.',
		 'Инженер готов помочь с подбором — ответьте на письмо.',
		 'Подобрали несколько вариантов по вашим требованиям — обсудим?'),
		('warranty_terms', 'the warranty did not suit',
		 'Гарантия на {{lead.category}}',
		 'Расскажем о расширенной гарантии и сервисном обслуживании.',
		 'Для оборудования доступна расширенная гарантия до трёх лет.',
		 'Если вопрос гарантии ещё важен — ответьте, пришлём условия.'),
		('cheaper_elsewhere', 'found it cheaper elsewhere',
		 'Цена на {{lead.category}}',
		 'Пришлите, пожалуйста, предложение, которое вы нашли, — постараемся сделать не хуже.',
		 'Мы проверили цены: можем предложить скидку на комплект.',
		 'Предложение в силе до конца месяца.'),
		('tender_lost', 'the tender was lost',
		 'Результаты тендера',
		 'Жаль, что тендер сложился не в нашу пользу. Будем рады участвовать в следующих закупках.',
		 'Подскажите, когда планируется следующая закупка?',
		 'Пришлём предложение к следующему тендеру заранее.'),
		('duplicate_request', 'a duplicate of another request',
		 'Ваш запрос',
		 'Ваш запрос уже в работе у менеджера — ответим в ближайшее время.',
		 'Менеджер готовит предложение по вашему запросу.',
		 'Если остались вопросы — ответьте на письмо.'),
		('market_research', 'the client was only comparing prices',
		 'Прайс-лист',
		 'Пришлём актуальный прайс-лист — пригодится для сравнения.',
		 'Если нужна помощь с выбором — подскажем.',
		 'Когда будете готовы к закупке — напишите, зафиксируем цены.'),
		('installation_required', 'installation is required',
		 'Монтаж и пусконаладка',
		 'Монтаж выполняют наши партнёры — можем организовать под ключ.',
		 'Рассчитали стоимость монтажа — прислать?',
		 'Предложение по монтажу в силе — ответьте, если актуально.'),
		('rental_wanted', 'the client wants to rent',
		 'Аренда оборудования',
		 'Аренды у нас нет, но есть выгодные условия покупки и выкупа.',
		 'Для краткосрочных задач подскажем партнёров по аренде.',
		 'Если решите купить — предложим лучшую цену.'),
		('used_equipment', 'the client wants used equipment',
		 'Оборудование б/у',
		 'Б/у оборудования нет, но есть доступные новые модели с гарантией.',
		 'Подобрали бюджетные модели — прислать?',
		 'Предложение по бюджетным моделям в силе.'),
		('leasing_required', 'leasing is required',
		 'Лизинг',
		 'Работаем с лизинговыми компаниями — подготовим документы.',
		 'Подскажите, с какой лизинговой компанией вы работаете?',
		 'Готовы выставить счёт на лизинговую компанию.'),
		('import_lead_time', 'the imported item takes too long',
		 'Сроки поставки',
		 'Поставка из-за рубежа занимает время — предложим аналоги со склада.',
		 'Есть модели с отгрузкой со склада — прислать список?',
		 'Если сроки подходят — зафиксируем заказ.'),
		('quantity_too_small', 'the quantity is too small',
		 'Ваш заказ',
		 'Для небольших партий предложим готовые наборы со склада.',
		 'Наборы расходников со скидкой — прислать?',
		 'Предложение в силе — ответьте, если актуально.'),
		('custom_manufacturing', 'custom manufacturing was asked for',
		 'Изготовление под заказ',
		 'Изготовление под заказ не делаем, но подберём серийное оборудование под задачу.',
		 'Инженер готов подобрать решение — пришлите требования.',
		 'Подобрали варианты — обсудим?'),
		('service_only', 'the client needs service, not a purchase',
		 'Сервис',
		 'Передали запрос в сервисный центр — с вами свяжутся.',
		 'Сервисный центр готов принять оборудование — уточните удобное время.',
		 'Если вопрос решён — будем рады помочь с покупкой расходников.'),
		('no_spare_parts', 'spare parts are unavailable',
		 'Запчасти',
		 'Нужных запчастей нет, но можем предложить замену узла или аналог.',
		 'Подобрали совместимые детали — прислать?',
		 'Если ремонт нецелесообразен — предложим новое оборудование со скидкой.'),
		('export_restrictions', 'the item cannot be delivered for legal reasons',
		 'Ваш запрос',
		 'К сожалению, этот товар мы поставить не можем. Предложим доступные аналоги.',
		 'Подобрали аналоги — прислать?',
		 'Предложение по аналогам в силе.'),
		('unit_economics', 'refused: the deal does not pay for the work',
		 'Ваш запрос: {{lead.category}}',
		 'Спасибо за обращение! Этот заказ удобнее оформить самостоятельно в нашем интернет-магазине.',
		 'Напоминаем: в интернет-магазине есть быстрая доставка.',
		 'Если понадобится помощь с выбором — ответьте на письмо.')
	), sequences AS (
		INSERT INTO scoring.sequence (name, steps, business_days, description)
		SELECT reason,
			   jsonb_build_array(
				   jsonb_build_object('delay', '0', 'subject', subject,
									  'body', greeting || first || signature),
				   jsonb_build_object('delay', '3 days', 'subject', 'Re: ' || subject,
									  'body', greeting || second || signature),
				   jsonb_build_object('delay', '3 days', 'subject', 'Re: ' || subject,
									  'body', greeting || third || signature)),
			   true, description
		  FROM chain
		ON CONFLICT (name) DO NOTHING
		RETURNING 1
	), reasons AS (
		INSERT INTO scoring.refusal_reason (reason, sequence, description)
		SELECT reason, reason, description FROM chain
		ON CONFLICT (reason) DO NOTHING
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM sequences) + (SELECT count(*) FROM reasons) INTO n;

	INSERT INTO scoring.sequence (name, steps, business_days, description)
	VALUES ('polite_decline',
			jsonb_build_array(jsonb_build_object(
				'delay', '0', 'subject', 'Ваш запрос: {{lead.category}}',
				'body', greeting ||
				'Спасибо за обращение! Этот запрос удобнее всего оформить в нашем интернет-магазине — там актуальные цены и быстрая доставка.'
				|| signature)),
			true, 'for leads handed to automation (priority 5)')
	ON CONFLICT (name) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN (SELECT count(*) FROM scoring.refusal_reason)::int;
END;
$$;
COMMENT ON FUNCTION scoring.install_defaults() IS
	'adds the shipped refusal reasons with their chains and the polite decline; keeps what exists; returns the number of refusal reasons';

SELECT pg_catalog.pg_extension_config_dump('scoring.sequence', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.refusal_reason', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.enrollment', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.outbox', '');

/* ---------------------------------------------------------------------
 * Numbers for the business: views for BI
 *
 * Forecasts and plans count forecast_profit: the lead's own expected
 * profit (without the lifetime uplift, which later leads will bring),
 * frozen when it was first routed or first scored.  A lead belongs to the
 * month of its created_at in the session's time zone.
 * ------------------------------------------------------------------- */

/*
 * The totals behind forecast_monthly and manager_plan, kept by statement
 * triggers on scoring.lead in the same transaction as the change (see
 * src/totals.c): per bucket of created_at and assignee (0: nobody), the
 * leads, their forecast profit, won profit, and what is still open.  A
 * bucket lies in one month in every time zone in use, so the views sum
 * buckets into months of the session's time zone and agree with the leads
 * to the cent.  Each statement appends its changes as delta rows, which
 * compact_totals() folds into one compacted row per bucket and assignee.
 */
CREATE FUNCTION scoring.total_bucket(created_at timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'scoring_total_bucket'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION scoring.total_bucket(timestamptz) IS
	'the bucket of lead_totals a moment falls in: the middle of its UTC month, or its quarter hour within 14 hours of a month''s edge';

CREATE TABLE scoring.lead_totals (
	bucket		timestamptz NOT NULL,
	assignee_id int NOT NULL,
	compacted	boolean NOT NULL DEFAULT false,
	leads		bigint NOT NULL,
	forecast_profit numeric NOT NULL,
	won_profit	numeric NOT NULL,
	open_leads	bigint NOT NULL,
	open_forecast_profit numeric NOT NULL
);
/* only compacted rows are unique; deltas are appended without an index entry */
CREATE UNIQUE INDEX lead_totals_compacted_key ON scoring.lead_totals (bucket, assignee_id)
	WHERE compacted;
COMMENT ON TABLE scoring.lead_totals IS
	'leads, forecast, won and open profit per bucket of created_at and assignee (0: nobody): deltas appended by triggers on lead, folded by compact_totals(); read by forecast_monthly and manager_plan';

CREATE FUNCTION scoring.lead_totals_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'scoring_lead_totals_trigger'
LANGUAGE C;

CREATE TRIGGER lead_totals_insert AFTER INSERT ON scoring.lead
	REFERENCING NEW TABLE AS new_leads
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_totals_trigger();
CREATE TRIGGER lead_totals_update AFTER UPDATE ON scoring.lead
	REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_totals_trigger();
CREATE TRIGGER lead_totals_delete AFTER DELETE ON scoring.lead
	REFERENCING OLD TABLE AS old_leads
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_totals_trigger();
CREATE TRIGGER lead_totals_truncate AFTER TRUNCATE ON scoring.lead
	FOR EACH STATEMENT EXECUTE FUNCTION scoring.lead_totals_trigger();

/*
 * Folds the committed deltas into the compacted rows, so that the totals
 * stay about as small as buckets times assignees.  Writers only append,
 * so neither waits for the other; deltas of transactions still running
 * are invisible here and folded by a later run.  One run at a time.
 * Returns the deltas folded.
 */
CREATE FUNCTION scoring.compact_totals()
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	LOCK TABLE scoring.lead_totals IN SHARE UPDATE EXCLUSIVE MODE;
	WITH folded AS (
		DELETE FROM scoring.lead_totals WHERE NOT compacted
		RETURNING *
	), added AS (
		INSERT INTO scoring.lead_totals AS t
		SELECT bucket, assignee_id, true, sum(leads), sum(forecast_profit), sum(won_profit),
			   sum(open_leads), sum(open_forecast_profit)
		  FROM folded
		 GROUP BY bucket, assignee_id
		ON CONFLICT (bucket, assignee_id) WHERE compacted DO UPDATE
		   SET leads = t.leads + excluded.leads,
			   forecast_profit = t.forecast_profit + excluded.forecast_profit,
			   won_profit = t.won_profit + excluded.won_profit,
			   open_leads = t.open_leads + excluded.open_leads,
			   open_forecast_profit = t.open_forecast_profit + excluded.open_forecast_profit
	)
	SELECT count(*) INTO n FROM folded;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION scoring.compact_totals() IS
	'folds the deltas of lead_totals into one compacted row per bucket and assignee; returns the deltas folded';

/*
 * Recomputes lead_totals from the leads: after a restore or a load made
 * with triggers disabled.  Waits for running changes of leads and holds
 * new ones back until it commits.  Returns the rows written.
 */
CREATE FUNCTION scoring.rebuild_totals()
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	LOCK TABLE scoring.lead IN SHARE MODE;
	LOCK TABLE scoring.lead_totals IN SHARE UPDATE EXCLUSIVE MODE;
	DELETE FROM scoring.lead_totals;
	INSERT INTO scoring.lead_totals
	SELECT scoring.total_bucket(created_at), coalesce(assignee_id, 0), true, count(*),
		   coalesce(sum(forecast_profit), 0),
		   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0),
		   count(*) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')),
		   coalesce(sum(forecast_profit) FILTER (WHERE status NOT IN ('won', 'lost', 'refused')), 0)
	  FROM scoring.lead
	 GROUP BY 1, 2;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION scoring.rebuild_totals() IS
	'recomputes lead_totals from the leads (after a restore or load with triggers disabled); returns the rows written';

CREATE TABLE scoring.marketing_spend (
	month		date NOT NULL
		CONSTRAINT marketing_spend_first_of_month CHECK (month = date_trunc('month', month)),
	shop		text NOT NULL,
	channel		text NOT NULL,
	amount		numeric NOT NULL
		CONSTRAINT marketing_spend_not_negative CHECK (amount >= 0),
	PRIMARY KEY (month, shop, channel)
);
COMMENT ON TABLE scoring.marketing_spend IS 'what marketing spent per month, shop and channel';

CREATE TABLE scoring.bonus_scale (
	min_attainment numeric PRIMARY KEY
		CONSTRAINT bonus_scale_not_negative CHECK (min_attainment >= 0),
	coefficient numeric NOT NULL
		CONSTRAINT bonus_scale_coefficient_not_negative CHECK (coefficient >= 0)
);
COMMENT ON TABLE scoring.bonus_scale IS
	'bonus coefficient from plan attainment: the row with the largest min_attainment reached applies';

CREATE VIEW scoring.forecast_monthly AS
	SELECT date_trunc('month', t.bucket)::date AS month,
		   sum(t.leads)::bigint AS leads,
		   sum(t.forecast_profit) AS expected_profit,
		   sum(t.won_profit) AS won_profit,
		   sum(t.open_leads)::bigint AS open_leads,
		   sum(t.open_forecast_profit) AS open_expected_profit,
		   CASE WHEN sum(t.open_leads) = 0 AND sum(t.forecast_profit) > 0
				THEN round(sum(t.won_profit) / sum(t.forecast_profit), 4) END AS accuracy,
		   CASE WHEN sum(t.open_leads) = 0 AND sum(t.forecast_profit) > 0
				THEN round(sum(t.won_profit) / sum(t.forecast_profit) - 1, 4) END AS error
	  FROM scoring.lead_totals t
	 GROUP BY 1
	HAVING sum(t.leads) > 0;
COMMENT ON VIEW scoring.forecast_monthly IS
	'per month: leads, expected (forecast) profit, won profit, what is still open; accuracy = won / expected and error = accuracy - 1 once every lead of the month is closed';

CREATE VIEW scoring.manager_plan AS
	WITH p AS (
		SELECT date_trunc('month', t.bucket)::date AS month, t.assignee_id AS manager_id,
			   sum(t.leads)::bigint AS leads,
			   sum(t.forecast_profit) AS plan,
			   sum(t.won_profit) AS won_profit
		  FROM scoring.lead_totals t
		 WHERE t.assignee_id <> 0
		 GROUP BY 1, 2
		HAVING sum(t.leads) > 0
	)
	SELECT p.month, p.manager_id, m.full_name, p.leads, p.plan, p.won_profit,
		   CASE WHEN p.plan > 0 THEN round(p.won_profit / p.plan, 4) END AS attainment,
		   (SELECT b.coefficient FROM scoring.bonus_scale b
			 WHERE p.plan > 0 AND b.min_attainment <= p.won_profit / p.plan
			 ORDER BY b.min_attainment DESC LIMIT 1) AS bonus_coefficient
	  FROM p LEFT JOIN scoring.manager m USING (manager_id);
COMMENT ON VIEW scoring.manager_plan IS
	'per month and manager: leads received, plan (their expected profit at routing), won profit, attainment and bonus coefficient';

CREATE VIEW scoring.marketing_roi AS
	WITH l AS (
		SELECT date_trunc('month', created_at)::date AS month, shop, channel,
			   count(*) AS leads,
			   ARRAY[count(*) FILTER (WHERE priority = 1), count(*) FILTER (WHERE priority = 2),
					 count(*) FILTER (WHERE priority = 3), count(*) FILTER (WHERE priority = 4),
					 count(*) FILTER (WHERE priority = 5)]::int[] AS leads_by_priority,
			   coalesce(sum(forecast_profit), 0) AS expected_profit,
			   coalesce(sum(won_profit) FILTER (WHERE status = 'won'), 0) AS won_profit
		  FROM scoring.lead
		 GROUP BY 1, 2, 3
	)
	SELECT coalesce(l.month, s.month) AS month,
		   coalesce(l.shop, s.shop) AS shop,
		   coalesce(l.channel, s.channel) AS channel,
		   coalesce(s.amount, 0) AS spend,
		   coalesce(l.leads, 0) AS leads,
		   coalesce(l.leads_by_priority, '{0,0,0,0,0}') AS leads_by_priority,
		   coalesce(l.expected_profit, 0) AS expected_profit,
		   coalesce(l.won_profit, 0) AS won_profit,
		   CASE WHEN s.amount > 0 THEN round(coalesce(l.expected_profit, 0) / s.amount, 4) END
			   AS expected_roi,
		   CASE WHEN s.amount > 0 THEN round(coalesce(l.won_profit, 0) / s.amount, 4) END
			   AS actual_roi
	  FROM l FULL JOIN scoring.marketing_spend s
		ON s.month = l.month AND s.shop = l.shop AND s.channel = l.channel;
COMMENT ON VIEW scoring.marketing_roi IS
	'per month, shop and channel: spend, leads and their priority mix, expected and won profit, and both returns on the spend';

CREATE VIEW scoring.work_queue AS
	SELECT l.lead_id, l.priority, l.expected_profit, l.status, l.assignee_id,
		   l.created_at, l.client_id, c.name AS client_name, l.category, l.brand,
		   l.budget, l.shop, l.channel, l.score_flags
	  FROM scoring.lead l LEFT JOIN scoring.client c USING (client_id)
	 WHERE l.status IN ('new', 'queued', 'assigned', 'auto', 'accepted')
	 ORDER BY l.priority, l.expected_profit DESC NULLS LAST, l.created_at, l.lead_id;
COMMENT ON VIEW scoring.work_queue IS
	'open leads in the order logistics and purchasing work them: priority, then expected profit, then age';

CREATE VIEW scoring.model_quality AS
	WITH live AS (
		SELECT l.model_id, l.p_win, (l.status = 'won') AS won
		  FROM scoring.lead l JOIN scoring.model m USING (model_id)
		 WHERE l.status IN ('won', 'lost') AND l.p_win IS NOT NULL
		   AND coalesce(l.closed_at, l.created_at) >= m.trained_at
	), ranked AS (
		-- ties share their average rank, so a tie counts half in the AUC
		SELECT model_id, p_win, won,
			   rank() OVER (PARTITION BY model_id ORDER BY p_win)
			   + (count(*) OVER (PARTITION BY model_id, p_win) - 1) / 2.0 AS r,
			   ntile(10) OVER (PARTITION BY model_id ORDER BY p_win) AS decile
		  FROM live
	), stats AS (
		SELECT model_id, count(*) AS leads, count(*) FILTER (WHERE won) AS wins,
			   sum(p_win) AS sum_p,
			   avg(-CASE WHEN won THEN ln(greatest(p_win, 1e-15))
						 ELSE ln(greatest(1 - p_win, 1e-15)) END) AS log_loss,
			   sum(r) FILTER (WHERE won) AS rank_sum
		  FROM ranked GROUP BY model_id
	), deciles AS (
		SELECT model_id, jsonb_agg(jsonb_build_object('decile', decile, 'leads', n,
						 'mean_p', round(mean_p::numeric, 4),
						 'win_rate', round(win_rate, 4)) ORDER BY decile) AS calibration
		  FROM (SELECT model_id, decile, count(*) AS n, avg(p_win) AS mean_p,
					   avg(won::int) AS win_rate
				  FROM ranked GROUP BY 1, 2) d
		 GROUP BY model_id
	)
	SELECT m.model_id, m.trained_at, m.active, m.train_since, m.train_until, m.n_rows,
		   (m.metrics #>> '{holdout,auc}')::float8 AS holdout_auc,
		   (m.metrics #>> '{holdout,log_loss}')::float8 AS holdout_log_loss,
		   (m.metrics #>> '{holdout,sum_p_over_wins}')::float8 AS holdout_sum_p_over_wins,
		   coalesce(s.leads, 0) AS live_leads, coalesce(s.wins, 0) AS live_wins,
		   CASE WHEN s.wins > 0 AND s.wins < s.leads
				THEN (s.rank_sum - s.wins * (s.wins + 1) / 2.0)
					 / (s.wins * (s.leads - s.wins)) END AS live_auc,
		   s.log_loss AS live_log_loss,
		   CASE WHEN s.wins > 0 THEN s.sum_p / s.wins END AS live_sum_p_over_wins,
		   d.calibration AS live_calibration
	  FROM scoring.model m
	  LEFT JOIN stats s USING (model_id)
	  LEFT JOIN deciles d USING (model_id);
COMMENT ON VIEW scoring.model_quality IS
	'per model: its holdout metrics at training, and the same measured live on leads scored by it and closed since it was trained (drift shows as the two parting)';

CREATE FUNCTION scoring.predict_lead(lead_id bigint, model_id int)
RETURNS float8
AS 'MODULE_PATHNAME', 'scoring_predict_lead'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION scoring.predict_lead(bigint, int) IS
	'p_win of a stored lead under any model, as it was known at the lead''s entry';

/*
 * For each month of [since, until): train on the 12 months before it (not
 * activated), forecast the month's closed leads with that model and
 * compare with what was won.  The models are removed afterwards.
 */
CREATE FUNCTION scoring.backtest(since date, until date, options jsonb DEFAULT '{}')
RETURNS TABLE (month date, leads bigint, expected_profit numeric, won_profit numeric,
			   accuracy numeric, bias numeric)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m date;
	mid int;
	margin numeric;
	e numeric;
	w numeric;
	n bigint;
	total_e numeric := 0;
	total_w numeric := 0;
	total_n bigint := 0;
BEGIN
	IF since IS NULL OR until IS NULL OR since >= until THEN
		RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'backtest needs since < until';
	END IF;
	SELECT (value #>> '{}')::numeric INTO margin FROM scoring.settings WHERE name = 'default_margin';
	FOR m IN SELECT generate_series(date_trunc('month', since), until - 1, interval '1 month')::date
	LOOP
		mid := scoring.train(m - interval '12 months', m,
							 coalesce(options, '{}') || '{"activate": false, "set_bands": false}');
		SELECT count(*),
			   round(coalesce(sum(scoring.predict_lead(l.lead_id, mid)::numeric
								  * l.budget * coalesce(b.margin, margin)), 0), 2),
			   coalesce(sum(l.won_profit) FILTER (WHERE l.status = 'won'), 0)
		  INTO n, e, w
		  FROM scoring.lead l LEFT JOIN scoring.brand b USING (brand)
		 WHERE l.status IN ('won', 'lost')
		   AND l.created_at >= m AND l.created_at < m + interval '1 month'
		   AND l.budget >= 0
		   AND l.budget <= (SELECT (value #>> '{}')::numeric FROM scoring.settings
							 WHERE name = 'max_budget');
		DELETE FROM scoring.model WHERE model_id = mid;
		month := m; leads := n; expected_profit := e; won_profit := w;
		accuracy := CASE WHEN e > 0 THEN round(w / e, 4) END;
		bias := CASE WHEN w > 0 THEN round(e / w - 1, 4) END;
		RETURN NEXT;
		total_n := total_n + n; total_e := total_e + e; total_w := total_w + w;
	END LOOP;
	-- the whole period, as a row without a month
	month := NULL; leads := total_n; expected_profit := total_e; won_profit := total_w;
	accuracy := CASE WHEN total_e > 0 THEN round(total_w / total_e, 4) END;
	bias := CASE WHEN total_w > 0 THEN round(total_e / total_w - 1, 4) END;
	RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION scoring.backtest(date, date, jsonb) IS
	'for each month: a model trained on the 12 months before it forecasts the month; accuracy = won / expected, bias = expected / won - 1; a last row without a month for the whole period';

CREATE FUNCTION scoring.grant_bi(role name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	EXECUTE format('GRANT USAGE ON SCHEMA scoring TO %I', role);
	EXECUTE format('GRANT SELECT ON scoring.forecast_monthly, scoring.manager_plan,'
				   ' scoring.marketing_roi, scoring.work_queue, scoring.model_quality,'
				   ' scoring.free_companies TO %I', role);
END;
$$;
COMMENT ON FUNCTION scoring.grant_bi(name) IS
	'lets a role read the BI views, and nothing else';

SELECT pg_catalog.pg_extension_config_dump('scoring.marketing_spend', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.bonus_scale', '');

/* ---------------------------------------------------------------------
 * pg_dump keeps configuration and data the user owns
 * ------------------------------------------------------------------- */

SELECT pg_catalog.pg_extension_config_dump('scoring.setting', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.brand', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.priority_band', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.refusal_rule', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.client', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.lead', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.model', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.client_client_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.lead_lead_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.model_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.assignment_log', '');
/* the identities of every table pg_dump keeps, so that a restore goes on numbering */
SELECT pg_catalog.pg_extension_config_dump('scoring.assignment_log_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.touch_touch_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.claim_history_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.enrollment_enrollment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('scoring.outbox_message_id_seq', '');
