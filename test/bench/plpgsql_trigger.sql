-- test/bench/plpgsql_trigger.sql
--	The PL/pgSQL yardstick of the insert benchmark: a BEFORE INSERT OR
--	UPDATE trigger that does the scoring work of scoring.lead_score_trigger()
--	(src/lead_trigger.c) as a PL/pgSQL programmer would write it, on a twin
--	of scoring.lead.  Same inputs, same outputs, same rules:
--
--	* the client and its history: the query src/client.c gives as the
--	  equivalent of its direct index scans (on this table); the function
--	  is VOLATILE, so its history query sees the leads the same INSERT
--	  stored before, as the C code's SnapshotSelf does;
--	* the active model: its scoring.model row, with the coefficients of
--	  the lead's features looked up one by one in the weights and
--	  numeric_features jsonb ("field=level" for a category, with the
--	  field's "(other)" level as the fallback; "field" for a number: the
--	  value, or sign(x)*ln(1+|x|) when the spec says log, clamped to
--	  [min, max], standardised; plus the coefficient of the range it
--	  falls in when the spec has cuts: bench.range_weight());
--	* fixed features: shop, channel, category, brand, budget, the client's
--	  kind, industry, core_industry, okved2 and annual_turnover, history
--	  leads and smoothed win rate; free features: every key of features
--	  (strings are levels, booleans "true"/"false", numbers a value plus
--	  the "(present)" level), like features.c;
--	* the budget checks and flags, the brand margin (scoring.brand, else
--	  the default_margin setting), the segment's lifetime uplift,
--	  potential, expected and forecast profit (p x budget x margin)
--	  rounded to kopecks, the priority band (priority 2 without an
--	  expected profit or without bands, 4 instead of 5 for odd input).
--
-- Not done: routing (the benchmark's leads are closed, won or lost, which
-- the C trigger scores but never routes) and refusal rules (none is
-- active in the benchmark, so the C trigger's loop over them is empty
-- too; here they would mean building the lead as jsonb and calling
-- scoring.condition_matches()).
--
-- What a PL/pgSQL trigger cannot do is keep the model between rows, so it
-- reads the scoring.model row (an index lookup on model_one_active), the
-- settings and the bands for every lead.  The weights are copied once per
-- lead into a local variable (m.weights || '{}') so that each lookup works
-- on a plain in-memory value instead of decompressing the stored,
-- compressed jsonb again (measured: 2.6 times faster than without).
--
-- The table's name is fixed: bench.twin_plpgsql.

-- The coefficient of the range of a number x (src/bins.c): the ranges are
-- cut at the numbers of cuts, x and the cuts compared after the signed log
-- in single precision (real), as training holds values; a range is named
-- "field=(-inf, c1)", "field=[c1, c2)", ..., "field=[cn, +inf)".
CREATE OR REPLACE FUNCTION bench.range_weight(cuts jsonb, weights jsonb, field text, x float8)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	n	int := jsonb_array_length(cuts);
	v	real := (sign(x) * ln(1 + abs(x)))::real;
	b	int := 0;
	c	float8;
BEGIN
	LOOP
		EXIT WHEN b = n;
		c := (cuts ->> b)::float8;
		EXIT WHEN (sign(c) * ln(1 + abs(c)))::real > v;
		b := b + 1;
	END LOOP;
	RETURN coalesce((weights ->> (field || '=' ||
		CASE WHEN b = 0 THEN '(-inf, ' || (cuts ->> 0) || ')'
			 WHEN b = n THEN '[' || (cuts ->> (n - 1)) || ', +inf)'
			 ELSE '[' || (cuts ->> (b - 1)) || ', ' || (cuts ->> b) || ')' END))::float8, 0);
END $$;

CREATE OR REPLACE FUNCTION bench.lead_score_plpgsql() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	created		timestamptz := coalesce(NEW.created_at, transaction_timestamp());
	has_client	boolean := false;
	c_kind		text;
	c_industry	text;
	c_okved		text;
	c_core		boolean;
	c_turnover	numeric;
	h_leads		bigint := 0;
	h_wins		bigint := 0;
	m_id		int;
	m_intercept float8;
	m_weights	jsonb;
	m_numeric	jsonb;
	m_ltv		jsonb;
	default_margin numeric;
	max_budget	numeric;
	flags		text[] := '{}';
	budget_ok	boolean := false;
	logit		float8;
	p			float8;
	w			float8;
	spec		jsonb;
	x			float8;
	t			float8;
	i			int;
	cat_fields	text[];
	cat_levels	text[];
	num_fields	text[];
	num_values	float8[];
	kv			record;
	margin		numeric;
	seg			text;
	uplift		numeric;
	potential	numeric;
	expected	numeric;
	forecast	numeric;
	band		smallint;
	nbands		bigint;
	prio		smallint;
BEGIN
	-- the client and its history before this lead (the C trigger's
	-- queries; the history counts by client_id, known client or not)
	IF NEW.client_id IS NOT NULL THEN
		SELECT c.kind, c.industry, c.okved, c.core_industry, c.annual_turnover
		  INTO c_kind, c_industry, c_okved, c_core, c_turnover
		  FROM scoring.client c WHERE c.client_id = NEW.client_id;
		has_client := FOUND;
		SELECT count(*),
			   count(*) FILTER (WHERE e.status = 'won' AND e.closed_at <= created)
		  INTO h_leads, h_wins
		  FROM bench.twin_plpgsql e
		 WHERE e.client_id = NEW.client_id AND e.created_at < created;
	END IF;

	-- the configuration: active model, settings
	SELECT m.model_id, m.intercept, m.weights || '{}', m.numeric_features, m.ltv
	  INTO m_id, m_intercept, m_weights, m_numeric, m_ltv
	  FROM scoring.model m WHERE m.active;
	SELECT (max(value #>> '{}') FILTER (WHERE name = 'default_margin'))::numeric,
		   (max(value #>> '{}') FILTER (WHERE name = 'max_budget'))::numeric
	  INTO default_margin, max_budget
	  FROM scoring.settings WHERE name IN ('default_margin', 'max_budget');

	-- the budget
	IF NEW.budget IS NULL THEN
		flags := flags || 'no_budget'::text;
	ELSIF NEW.budget = 'NaN'::numeric THEN
		flags := flags || 'invalid_budget'::text;
	ELSIF NEW.budget < 0 THEN
		flags := flags || 'negative_budget'::text;
	ELSIF NEW.budget > max_budget THEN
		flags := flags || 'implausible_budget'::text;
	ELSE
		budget_ok := true;
	END IF;

	-- the brand's margin (checked even without a usable budget)
	SELECT b.margin INTO margin FROM scoring.brand b WHERE b.brand = NEW.brand;
	IF NOT FOUND THEN
		flags := flags || CASE WHEN NEW.brand IS NULL THEN 'no_brand' ELSE 'unknown_brand' END;
		margin := default_margin;
	END IF;
	IF NEW.client_id IS NOT NULL AND NOT has_client THEN
		flags := flags || 'unknown_client'::text;
	END IF;

	-- p_win: the model's coefficients of the lead's features
	IF m_id IS NULL THEN
		flags := flags || 'no_active_model'::text;
	ELSE
		logit := m_intercept;

		cat_fields := ARRAY['shop', 'channel', 'category', 'brand', 'client.kind',
							'client.industry', 'client.core_industry', 'client.okved2'];
		cat_levels := ARRAY[NEW.shop, NEW.channel, NEW.category, NEW.brand, c_kind,
							c_industry, c_core::text,
							CASE WHEN length(c_okved) >= 2 THEN left(c_okved, 2) END];
		FOR i IN 1 .. 8 LOOP
			w := (m_weights ->> (cat_fields[i] || '=' || coalesce(cat_levels[i], '(missing)')))::float8;
			IF w IS NULL AND cat_levels[i] IS NOT NULL THEN
				w := (m_weights ->> (cat_fields[i] || '=(other)'))::float8;
			END IF;
			logit := logit + coalesce(w, 0);
		END LOOP;

		num_fields := ARRAY['budget', 'client.annual_turnover', 'history.leads',
							'history.win_rate'];
		num_values := ARRAY[CASE WHEN NEW.budget <> 'NaN'::numeric THEN NEW.budget::float8 END,
							CASE WHEN c_turnover <> 'NaN'::numeric THEN c_turnover::float8 END,
							h_leads::float8,
							CASE WHEN h_leads > 0 THEN (h_wins + 1.0) / (h_leads + 2.0) END];
		FOR i IN 1 .. 4 LOOP
			IF num_values[i] IS NULL THEN
				logit := logit + coalesce((m_weights ->> (num_fields[i] || '=(missing)'))::float8, 0);
			ELSE
				w := (m_weights ->> num_fields[i])::float8;
				spec := m_numeric -> num_fields[i];
				x := num_values[i];
				IF w IS NOT NULL AND spec IS NOT NULL THEN
					t := CASE WHEN coalesce((spec ->> 'log')::boolean, true)
							  THEN sign(x) * ln(1 + abs(x)) ELSE x END;
					t := greatest((spec ->> 'min')::float8, least((spec ->> 'max')::float8, t));
					logit := logit + w * (t - (spec ->> 'mean')::float8) / (spec ->> 'std')::float8;
				END IF;
				IF spec ? 'cuts' THEN
					logit := logit + bench.range_weight(spec -> 'cuts', m_weights, num_fields[i], x);
				END IF;
			END IF;
		END LOOP;

		IF jsonb_typeof(NEW.features) = 'object' THEN
			FOR kv IN SELECT key, value FROM jsonb_each(NEW.features) LOOP
				CASE jsonb_typeof(kv.value)
				WHEN 'string', 'boolean' THEN
					w := (m_weights ->> ('features.' || kv.key || '=' || (kv.value #>> '{}')))::float8;
					IF w IS NULL THEN
						w := (m_weights ->> ('features.' || kv.key || '=(other)'))::float8;
					END IF;
					logit := logit + coalesce(w, 0);
				WHEN 'number' THEN
					w := (m_weights ->> ('features.' || kv.key))::float8;
					spec := m_numeric -> ('features.' || kv.key);
					x := (kv.value #>> '{}')::float8;
					IF w IS NOT NULL AND spec IS NOT NULL THEN
						t := CASE WHEN coalesce((spec ->> 'log')::boolean, true)
							  THEN sign(x) * ln(1 + abs(x)) ELSE x END;
						t := greatest((spec ->> 'min')::float8, least((spec ->> 'max')::float8, t));
						logit := logit + w * (t - (spec ->> 'mean')::float8) / (spec ->> 'std')::float8;
					END IF;
					IF spec ? 'cuts' THEN
						logit := logit + bench.range_weight(spec -> 'cuts', m_weights,
															'features.' || kv.key, x);
					END IF;
					logit := logit + coalesce((m_weights ->> ('features.' || kv.key || '=(present)'))::float8, 0);
				ELSE
					NULL;		-- null, arrays and objects carry nothing
				END CASE;
			END LOOP;
		END IF;

		p := CASE WHEN logit >= 0 THEN 1 / (1 + exp(-logit))
				  ELSE exp(logit) / (1 + exp(logit)) END;
	END IF;

	-- profit: budget x margin(brand) + the segment's lifetime uplift
	IF budget_ok THEN
		seg := CASE WHEN NOT has_client OR c_kind IS NULL THEN 'unknown'
					WHEN c_kind <> 'company' THEN c_kind
					ELSE 'company/' || coalesce(c_industry, '(missing)') || '/' ||
						 CASE c_core WHEN true THEN 'core' WHEN false THEN 'non-core'
									 ELSE '(missing)' END END;
		uplift := round(coalesce((m_ltv ->> seg)::float8, 0)::numeric, 2);
		potential := round(NEW.budget * margin + uplift, 2);
		IF p IS NOT NULL THEN
			expected := round(p::numeric * potential, 2);
			forecast := round(p::numeric * (NEW.budget * margin), 2);
		END IF;
	END IF;

	-- priority
	IF expected IS NULL THEN
		prio := 2;
	ELSE
		SELECT min(pb.priority) FILTER (WHERE expected >= pb.min_expected_profit), count(*)
		  INTO band, nbands
		  FROM scoring.priority_band pb;
		IF nbands = 0 THEN
			flags := flags || 'no_priority_bands'::text;
			prio := 2;
		ELSE
			prio := coalesce(band, 5);
			IF prio = 5 AND cardinality(flags) > 0 THEN
				prio := 4;
			END IF;
		END IF;
	END IF;

	NEW.p_win := p;
	NEW.potential_profit := potential;
	NEW.ltv_uplift := uplift;
	NEW.expected_profit := expected;
	NEW.forecast_profit := forecast;
	NEW.priority := prio;
	NEW.model_id := m_id;
	NEW.score_flags := flags;
	RETURN NEW;
END;
$$;
