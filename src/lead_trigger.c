/*-------------------------------------------------------------------------
 *
 * lead_trigger.c
 *		The row trigger on scoring.lead: score, route, keep the loads.
 *
 * For each new lead, or one whose inputs changed: read its columns, its
 * client and the client's history (client.c), take the cached
 * configuration, and compute p_win, potential and expected profit,
 * priority and the flags that say what was missing or odd.  A lead that
 * cannot be scored is still stored, flagged and given to a person
 * (priority 2); a refusal rule that matches wins over everything
 * (priority 5).  A lead that becomes ready ('new') is routed (route.c).
 * Every change of status or assignee, deletes included, moves the
 * managers' loads, so the counters stay exact whoever makes the change.
 *
 * IDENTIFICATION
 *		src/lead_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "scoring.h"

PG_FUNCTION_INFO_V1(scoring_lead_score_trigger);

/* Columns of scoring.lead the trigger reads or writes */
typedef enum LeadColumn
{
	COL_LEAD_ID,
	COL_CREATED_AT,
	COL_CLIENT_ID,
	COL_SHOP,
	COL_CHANNEL,
	COL_CATEGORY,
	COL_BRAND,
	COL_BUDGET,
	COL_FEATURES,
	COL_STATUS,
	COL_P_WIN,
	COL_POTENTIAL_PROFIT,
	COL_LTV_UPLIFT,
	COL_EXPECTED_PROFIT,
	COL_PRIORITY,
	COL_MODEL_ID,
	COL_SCORE_FLAGS,
	COL_ASSIGNEE_ID,
	COL_ASSIGNED_AT,
	COL_ROUTED_EXPECTED_PROFIT,
	COL_LAPSED_IDS,
	COL_FORECAST_PROFIT,
	COL_CLOSED_AT,
	NUM_LEAD_COLUMNS
} LeadColumn;

static const char *const lead_column_names[NUM_LEAD_COLUMNS] = {
	"lead_id", "created_at", "client_id", "shop", "channel", "category",
	"brand", "budget", "features", "status", "p_win", "potential_profit",
	"ltv_uplift", "expected_profit", "priority", "model_id", "score_flags",
	"assignee_id", "assigned_at", "routed_expected_profit", "lapsed_ids",
	"forecast_profit", "closed_at"
};

/* The columns whose update means the lead must be scored again */
static const LeadColumn input_columns[] = {
	COL_CREATED_AT, COL_CLIENT_ID, COL_SHOP, COL_CHANNEL, COL_CATEGORY,
	COL_BRAND, COL_BUDGET, COL_FEATURES
};

/* Columns the trigger sets, collected for modified_row() */
typedef struct Outputs
{
	int			n;
	int			cols[NUM_LEAD_COLUMNS];
	Datum		values[NUM_LEAD_COLUMNS];
	bool		nulls[NUM_LEAD_COLUMNS];
} Outputs;

/* Attribute numbers of the lead columns, per relation */
static Oid	AttnumsRelid = InvalidOid;
static int	Attnums[NUM_LEAD_COLUMNS];

/* Per-row work happens here; reset for every lead */
static MemoryContext RowContext = NULL;

/* A lead being scored: its inputs and what the scorer computed */
typedef struct ScoredLead
{
	LeadInput	in;
	const char *status;
	bool		have_p;
	double		p_win;
	Numeric		potential;		/* NULL when it cannot be computed */
	Numeric		uplift;
	Numeric		expected;
	Numeric		forecast;		/* p_win x (potential - uplift): this deal only */
	int16		priority;
	int32		model_id;		/* 0 when no model scored the lead */
	bool		unknown_client; /* a client_id scoring.client does not have */
	List	   *flags;			/* of char * */
} ScoredLead;

/*
 * A row of scoring.lead taken apart once: the trigger reads a dozen of its
 * columns, most of them behind variable-length ones, and builds the row it
 * returns from the same values.
 */
typedef struct LeadRow
{
	Datum	   *values;
	bool	   *nulls;
} LeadRow;

/* Forgets the attribute numbers when the lead table changes */
static void
attnums_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == AttnumsRelid)
		AttnumsRelid = InvalidOid;
}

/* Registers the invalidation callback; called from _PG_init */
void
lead_trigger_init(void)
{
	CacheRegisterRelcacheCallback(attnums_invalidate, (Datum) 0);
}

/* Finds the attribute numbers of the lead columns in a relation */
static void
resolve_attnums(Relation rel)
{
	int			i;

	for (i = 0; i < NUM_LEAD_COLUMNS; i++)
		Attnums[i] = trigger_column(rel, "scoring trigger", lead_column_names[i]);
	AttnumsRelid = RelationGetRelid(rel);
}

/* Takes a row apart, in the current memory context */
static void
lead_row(LeadRow *row, HeapTuple tup, TupleDesc desc)
{
	row->values = palloc(sizeof(Datum) * desc->natts);
	row->nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(tup, desc, row->values, row->nulls);
}

/* A column of a row */
static inline Datum
column_value(const LeadRow *row, LeadColumn col, bool *isnull)
{
	*isnull = row->nulls[Attnums[col] - 1];
	return row->values[Attnums[col] - 1];
}

/* Reads a text column, NULL when SQL NULL */
static const char *
text_column(const LeadRow *row, LeadColumn col)
{
	bool		isnull;
	Datum		d = column_value(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Whether no BEFORE INSERT row trigger on the lead table but this one
 * could still drop or change a lead it passes on
 */
static bool
last_insert_trigger(TriggerData *trigdata)
{
	TriggerDesc *triggers = trigdata->tg_relation->trigdesc;
	int			i;

	for (i = 0; i < triggers->numtriggers; i++)
	{
		Trigger    *t = &triggers->triggers[i];

		if (t->tgoid != trigdata->tg_trigger->tgoid &&
			TRIGGER_TYPE_MATCHES(t->tgtype, TRIGGER_TYPE_ROW,
								 TRIGGER_TYPE_BEFORE, TRIGGER_TYPE_INSERT))
			return false;
	}
	return true;
}

/*
 * Reads a lead's inputs from its row.  An insert (trigdata given) reads its
 * client's history through the command's memo, and tells the memo what it
 * passes on (src/client.c).
 */
static void
read_lead(ScoredLead *lead, const LeadRow *row, TriggerData *insert_trigdata)
{
	bool		isnull;
	Datum		d;
	InsertedLead insert;

	memset(lead, 0, sizeof(ScoredLead));
	lead->in.client_core = -1;

	d = column_value(row, COL_LEAD_ID, &isnull);
	lead->in.lead_id = isnull ? 0 : DatumGetInt64(d);
	lead->in.shop = text_column(row, COL_SHOP);
	lead->in.channel = text_column(row, COL_CHANNEL);
	lead->in.category = text_column(row, COL_CATEGORY);
	lead->in.brand = text_column(row, COL_BRAND);
	lead->status = text_column(row, COL_STATUS);

	d = column_value(row, COL_BUDGET, &isnull);
	lead->in.budget = isnull ? NULL : DatumGetNumeric(d);

	d = column_value(row, COL_FEATURES, &isnull);
	lead->in.features = isnull ? NULL : DatumGetJsonbP(d);

	d = column_value(row, COL_CREATED_AT, &isnull);
	insert.created_at = isnull ? GetCurrentTransactionStartTimestamp() :
		DatumGetTimestampTz(d);

	d = column_value(row, COL_CLIENT_ID, &isnull);
	insert.has_client_id = !isnull;
	insert.client_id = isnull ? 0 : DatumGetInt64(d);
	if (insert_trigdata != NULL)
	{
		insert.rel = insert_trigdata->tg_relation;
		insert.last_trigger = last_insert_trigger(insert_trigdata);
		d = column_value(row, COL_CLOSED_AT, &isnull);
		insert.won_at = !isnull && lead->status != NULL &&
			strcmp(lead->status, "won") == 0 ? DatumGetTimestampTz(d) : DT_NOEND;
	}
	if (insert.has_client_id)
	{
		lead_input_from_client(&lead->in, insert.client_id, insert.created_at,
							   insert_trigdata != NULL ? &insert : NULL, true);
		lead->unknown_client = !lead->in.has_client;
	}
	if (insert_trigdata != NULL)
	{
		client_history_passed(&insert);
		if (insert.has_client_id && is_scoring_lead(insert.rel))
			history_cache_inserted(RelationGetRelid(insert.rel), insert.client_id,
								   insert.created_at, insert.won_at,
								   insert.last_trigger);
	}
}

/* Compares two numerics like numeric_cmp: NaN above everything */
static int
numeric_compare(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/* Adds a flag, once */
static void
flag(ScoredLead *lead, const char *what)
{
	ListCell   *lc;

	foreach(lc, lead->flags)
		if (strcmp((char *) lfirst(lc), what) == 0)
			return;
	lead->flags = lappend(lead->flags, (char *) what);
}

/* Whether a numeric is NaN or an infinity */
static bool
numeric_not_finite(Numeric num)
{
#if PG_VERSION_NUM >= 140000
	return numeric_is_nan(num) || numeric_is_inf(num);
#else
	return numeric_is_nan(num);
#endif
}

/*
 * Whether a finite numeric is below zero as a double: read from its digits
 * when they fit, through text only for values beyond a double's range (a
 * value too small for a double counts as zero, as it always has).
 */
static bool
numeric_below_zero(Numeric num)
{
	double		d;

	if (numeric_to_finite_double(num, &d))
		return d < 0;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(num))) < 0;
}

/*
 * Checks the budget: present, finite, not negative and not beyond the
 * max_budget setting.  Flags and returns false when it cannot be used.
 */
static bool
budget_usable(ScoredLead *lead, ScoringConfig *config)
{
	Numeric		budget = lead->in.budget;

	if (budget == NULL)
		flag(lead, "no_budget");
	else if (numeric_not_finite(budget))
		flag(lead, "invalid_budget");
	else if (numeric_below_zero(budget))
		flag(lead, "negative_budget");
	else if (numeric_compare(budget, config->max_budget) > 0)
		flag(lead, "implausible_budget");
	else
		return true;
	return false;
}

/* Rounds a numeric to kopecks */
static Numeric
round2(Numeric num)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_round,
											   NumericGetDatum(num),
											   Int32GetDatum(2)));
}

#if PG_VERSION_NUM >= 140000
/*
 * The fifteen significant digits of a > 0, rounded as printf("%.15g")
 * rounds them: a = digits / 10^k.  With 10^k exact (k <= 22), fma() gives
 * a x 10^k exactly as hi + lo, so whether the digits round up is decided
 * on the exact value.  False within 1e-9 of a tie, which could round
 * either way, and when 10^k is not exact.
 */
static bool
fifteen_digits(double a, int64 *digits, int *k)
{
	static const double powers_of_ten[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
		1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
	};
	int			e,
				tries;

	/* the first digit's place, give or take one */
	e = (int) floor(log10(a));

	for (tries = 0; tries < 3; tries++)
	{
		double		hi,
					lo,
					n,
					frac;

		*k = DBL_DIG - 1 - e;
		if (*k < 0 || *k >= lengthof(powers_of_ten))
			return false;
		hi = a * powers_of_ten[*k];
		lo = fma(a, powers_of_ten[*k], -hi);
		n = floor(hi);
		frac = (hi - n) + lo;
		if (frac < 0)
		{
			n -= 1;
			frac += 1;
		}
		else if (frac >= 1)
		{
			n += 1;
			frac -= 1;
		}
		if (n < 1e14)
			e--;
		else if (n >= 1e15)
			e++;
		else if (fabs(frac - 0.5) < 1e-9)
			return false;
		else
		{
			*digits = (int64) n + (frac > 0.5);
			return true;
		}
	}
	return false;
}
#endif

#if PG_VERSION_NUM >= 140000
/*
 * The value float8_numeric() gives a double, d rounded to DBL_DIG (15)
 * significant digits, as digits / 10^k, without the printf() it spends
 * most of its time in (fifteen_digits()).  False near a tie and outside
 * 1e-8 .. 1e14, which float8_numeric() itself takes.
 */
static bool
double_decimal(double d, int64 *digits, int *k)
{
	double		a = fabs(d);

	if (a == 0)
	{
		*digits = 0;
		*k = 0;
		return true;
	}
	if (a >= 1e-8 && a < 1e14 && fifteen_digits(a, digits, k))
	{
		if (d < 0)
			*digits = -*digits;
		return true;
	}
	return false;
}
#endif

/* A double as a numeric: the value float8_numeric() gives */
static Numeric
double_numeric(double d)
{
#if PG_VERSION_NUM >= 140000
	int64		digits;
	int			k;

	if (double_decimal(d, &digits, &k))
		return int64_div_fast_to_numeric(digits, k);
#endif
	return DatumGetNumeric(DirectFunctionCall1(float8_numeric,
											   Float8GetDatum(d)));
}

#if PG_VERSION_NUM >= 140000 && defined(HAVE_INT128)
/*
 * The profits in integer arithmetic.  Numeric multiplies and adds exactly
 * and round2() rounds half away from zero, so when the amounts are small
 * numerics (small_numeric_decimal()) and p has its fifteen digits
 * (double_numeric()), products and sums of their digits in 128 bits, kept
 * below 10^37, give the same kopecks without a numeric for every step: in
 * a bulk import the numeric operations were a twentieth of the time.
 */

/* An exact decimal: m x 10^e */
typedef struct Exact
{
	int128		m;
	int			e;
} Exact;

#define EXACT_DIGITS	37		/* |m| < 10^37 */

/* 10^0 .. 10^37, filled by exact_profit()'s first call */
static int128 powers_of_ten_128[EXACT_DIGITS + 1];

static inline int128
abs128(int128 x)
{
	return x < 0 ? -x : x;
}

/* a x b, false if it would reach 10^37 */
static bool
exact_mul(Exact a, Exact b, Exact *r)
{
	if (b.m != 0 &&
		abs128(a.m) >= powers_of_ten_128[EXACT_DIGITS] / abs128(b.m))
		return false;
	r->m = a.m * b.m;
	r->e = a.e + b.e;
	return true;
}

/* x with exponent e <= x.e, false if its m would reach 10^37 */
static bool
exact_rescale(Exact x, int e, Exact *r)
{
	int			n = x.e - e;

	Assert(n >= 0);
	if (n > EXACT_DIGITS ||
		abs128(x.m) >= powers_of_ten_128[EXACT_DIGITS - n])
		return false;
	r->m = x.m * powers_of_ten_128[n];
	r->e = e;
	return true;
}

/* a + b, false if it would reach 10^37 */
static bool
exact_add(Exact a, Exact b, Exact *r)
{
	int			e = Min(a.e, b.e);

	if (!exact_rescale(a, e, &a) || !exact_rescale(b, e, &b) ||
		abs128(a.m) + abs128(b.m) >= powers_of_ten_128[EXACT_DIGITS])
		return false;
	r->m = a.m + b.m;
	r->e = e;
	return true;
}

/* x in kopecks, rounded half away from zero; false beyond int64 */
static bool
exact_kopecks(Exact x, int64 *kopecks)
{
	Exact		k;
	int128		q;

	if (x.e >= -2)
	{
		if (!exact_rescale(x, -2, &k))
			return false;
		q = abs128(k.m);
	}
	else if (-2 - x.e > EXACT_DIGITS)
		q = 0;					/* below half a kopeck */
	else
	{
		int128		d = powers_of_ten_128[-2 - x.e];
		int128		r;

		q = abs128(x.m) / d;
		r = abs128(x.m) - q * d;
		if (r >= d - r)
			q++;
	}
	if (q > PG_INT64_MAX)
		return false;
	*kopecks = x.m < 0 ? -(int64) q : (int64) q;
	return true;
}

/* A small numeric (small_numeric_decimal()) as an Exact; false for others */
static bool
exact_numeric(Numeric num, Exact *x)
{
	int64		m;

	if (!small_numeric_decimal(num, &m, &x->e))
		return false;
	x->m = m;
	return true;
}

/* d as double_numeric() gives it; false where that takes float8_numeric() */
static bool
exact_double(double d, Exact *x)
{
	int64		digits;
	int			k;

	if (!double_decimal(d, &digits, &k))
		return false;
	x->m = digits;
	x->e = -k;
	return true;
}

/*
 * compute_profit()'s potential, expected and forecast, to the kopeck, when
 * every value is in range (false otherwise, nothing set): base = budget x
 * margin; potential = base + uplift; expected = p x potential (rounded);
 * forecast = p x base.
 */
static bool
exact_profit(ScoredLead *lead, Numeric margin)
{
	Exact		budget,
				m,
				uplift,
				base,
				sum,
				p,
				potential,
				product;
	int64		potential_k,
				expected_k = 0,
				forecast_k = 0;

	if (powers_of_ten_128[0] == 0)
	{
		int			i;

		powers_of_ten_128[0] = 1;
		for (i = 1; i <= EXACT_DIGITS; i++)
			powers_of_ten_128[i] = powers_of_ten_128[i - 1] * 10;
	}
	if (!exact_numeric(lead->in.budget, &budget) ||
		!exact_numeric(margin, &m) ||
		!exact_numeric(lead->uplift, &uplift) ||
		!exact_mul(budget, m, &base) ||
		!exact_add(base, uplift, &sum) ||
		!exact_kopecks(sum, &potential_k))
		return false;
	if (lead->have_p)
	{
		potential.m = potential_k;
		potential.e = -2;
		if (!exact_double(lead->p_win, &p) ||
			!exact_mul(p, potential, &product) ||
			!exact_kopecks(product, &expected_k) ||
			!exact_mul(p, base, &product) ||
			!exact_kopecks(product, &forecast_k))
			return false;
	}
	lead->potential = int64_div_fast_to_numeric(potential_k, 2);
	if (lead->have_p)
	{
		lead->expected = int64_div_fast_to_numeric(expected_k, 2);
		lead->forecast = int64_div_fast_to_numeric(forecast_k, 2);
	}
	return true;
}
#endif

/* p x amount, rounded to kopecks */
static Numeric
times_p(Numeric p, Numeric amount)
{
	return round2(DatumGetNumeric(DirectFunctionCall2(numeric_mul,
													  NumericGetDatum(p),
													  NumericGetDatum(amount))));
}

/* The margin of the lead's brand, or the default one, flagged */
static Numeric
lead_margin(ScoredLead *lead, ScoringConfig *config)
{
	Numeric		margin;

	if (brand_margin(config, lead->in.brand, &margin, NULL))
		return margin;
	flag(lead, lead->in.brand == NULL ? "no_brand" : "unknown_brand");
	return config->default_margin;
}

/*
 * potential = budget x margin + segment uplift; expected = p x that;
 * forecast = p x budget x margin, what this deal itself should bring.
 */
static void
compute_profit(ScoredLead *lead, ScoringConfig *config, Numeric margin)
{
	Numeric		base;

	lead->uplift = config->model ?
		model_ltv(config->model, client_segment(&lead->in)) :
		round2(double_numeric(0.0));
#if PG_VERSION_NUM >= 140000 && defined(HAVE_INT128)
	if (exact_profit(lead, margin))
		return;
#endif
	base = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
											   NumericGetDatum(lead->in.budget),
											   NumericGetDatum(margin)));
	lead->potential = round2(DatumGetNumeric(
		DirectFunctionCall2(numeric_add, NumericGetDatum(base),
							NumericGetDatum(lead->uplift))));
	if (lead->have_p)
	{
		Numeric		p = double_numeric(lead->p_win);

		lead->expected = times_p(p, lead->potential);
		lead->forecast = times_p(p, base);
	}
}

/* The band priority of an expected profit, 5 below every band */
static int16
band_priority(ScoringConfig *config, Numeric expected)
{
	int			i;

	for (i = 0; i < config->nbands; i++)
		if (numeric_compare(expected, config->band_min[i]) >= 0)
			return config->band_priority[i];
	return 5;
}

/* Lets a condition read a lead being scored */
static bool
lead_lookup(void *ctx, const char *key, JsonbValue *out)
{
	ScoredLead *lead = (ScoredLead *) ctx;
	const char *s = NULL;
	Numeric		n = NULL;

	if (strncmp(key, "features.", 9) == 0)
	{
		JsonbValue *v;

		if (lead->in.features == NULL || !JB_ROOT_IS_OBJECT(lead->in.features))
			return false;
		v = getKeyJsonValueFromContainer(&lead->in.features->root, key + 9,
										 strlen(key + 9), out);
		return v != NULL && (v->type == jbvString || v->type == jbvNumeric ||
							 v->type == jbvBool);
	}
	if (strcmp(key, "client.core_industry") == 0)
	{
		if (lead->in.client_core < 0)
			return false;
		out->type = jbvBool;
		out->val.boolean = lead->in.client_core == 1;
		return true;
	}

	if (strcmp(key, "shop") == 0)
		s = lead->in.shop;
	else if (strcmp(key, "channel") == 0)
		s = lead->in.channel;
	else if (strcmp(key, "category") == 0)
		s = lead->in.category;
	else if (strcmp(key, "brand") == 0)
		s = lead->in.brand;
	else if (strcmp(key, "status") == 0)
		s = lead->status;
	else if (strcmp(key, "client.kind") == 0)
		s = lead->in.client_kind;
	else if (strcmp(key, "client.industry") == 0)
		s = lead->in.client_industry;
	else if (strcmp(key, "client.okved") == 0)
		s = lead->in.client_okved;
	else if (strcmp(key, "budget") == 0 && lead->in.budget != NULL &&
			 !numeric_not_finite(lead->in.budget))
		n = lead->in.budget;
	else if (strcmp(key, "client.annual_turnover") == 0)
		n = lead->in.client_turnover;
	else if (strcmp(key, "expected_profit") == 0)
		n = lead->expected;
	else if (strcmp(key, "p_win") == 0 && lead->have_p)
		n = double_numeric(lead->p_win);
	else if (strcmp(key, "priority") == 0 && lead->priority > 0)
		n = DatumGetNumeric(DirectFunctionCall1(int4_numeric,
												Int32GetDatum(lead->priority)));

	if (s != NULL)
	{
		out->type = jbvString;
		out->val.string.val = (char *) s;
		out->val.string.len = strlen(s);
		return true;
	}
	if (n != NULL)
	{
		out->type = jbvNumeric;
		out->val.numeric = n;
		return true;
	}
	return false;
}

/*
 * Scores a lead with the configuration: the heart of the trigger, kept
 * apart from tuple handling so that it reads as the business rule.
 */
static void
score_lead(ScoredLead *lead, ScoringConfig *config)
{
	bool		usable_budget = budget_usable(lead, config);
	Numeric		margin = lead_margin(lead, config);
	bool		odd_input;
	int			i;

	/* scored without the client's attributes; a person links the client */
	if (lead->unknown_client)
		flag(lead, "unknown_client");

	if (config->model != NULL)
	{
		lead->model_id = model_id(config->model);
		lead->p_win = logistic(model_logit(config->model, &lead->in, NULL));
		lead->have_p = true;
	}
	else
		flag(lead, "no_active_model");

	if (usable_budget)
		compute_profit(lead, config, margin);
	odd_input = list_length(lead->flags) > 0;

	if (lead->expected == NULL)
		lead->priority = 2;		/* cannot be scored: a person looks at it */
	else if (config->nbands == 0)
	{
		flag(lead, "no_priority_bands");
		lead->priority = 2;
	}
	else
	{
		lead->priority = band_priority(config, lead->expected);
		/* odd data goes to a person, never straight to automation */
		if (odd_input && lead->priority == 5)
			lead->priority = 4;
	}

	/* a refusal is a deliberate decision and wins over every fallback */
	for (i = 0; i < config->nrules; i++)
	{
		if (condition_eval(config->rules[i], lead_lookup, lead))
		{
			flag(lead, psprintf("refused:%s", config->rule_names[i]));
			lead->priority = 5;
			break;
		}
	}
}

/* The flags as a text[] datum */
static Datum
flags_datum(List *flags)
{
	int			n = list_length(flags);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, flags)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/* Sets one output column */
static void
set_output(Outputs *out, LeadColumn col, Datum value, bool isnull)
{
	out->cols[out->n] = Attnums[col];
	out->values[out->n] = value;
	out->nulls[out->n] = isnull;
	out->n++;
}

/* The score columns of a freshly scored lead */
static void
score_outputs(ScoredLead *lead, Outputs *out)
{
	set_output(out, COL_P_WIN, Float8GetDatum(lead->p_win), !lead->have_p);
	set_output(out, COL_POTENTIAL_PROFIT, NumericGetDatum(lead->potential),
			   lead->potential == NULL);
	set_output(out, COL_LTV_UPLIFT, NumericGetDatum(lead->uplift),
			   lead->uplift == NULL);
	set_output(out, COL_EXPECTED_PROFIT, NumericGetDatum(lead->expected),
			   lead->expected == NULL);
	set_output(out, COL_PRIORITY, Int16GetDatum(lead->priority), false);
	set_output(out, COL_MODEL_ID, Int32GetDatum(lead->model_id),
			   lead->model_id == 0);
}

/* Takes the score a lead already has, when its inputs did not change */
static void
read_score(ScoredLead *lead, const LeadRow *row)
{
	bool		isnull;
	Datum		d;
	Datum	   *flags;
	int			nflags,
				i;

	d = column_value(row, COL_PRIORITY, &isnull);
	lead->priority = isnull ? 2 : DatumGetInt16(d);
	d = column_value(row, COL_EXPECTED_PROFIT, &isnull);
	lead->expected = isnull ? NULL : DatumGetNumeric(d);
	d = column_value(row, COL_P_WIN, &isnull);
	lead->have_p = !isnull;
	lead->p_win = isnull ? 0 : DatumGetFloat8(d);
	d = column_value(row, COL_POTENTIAL_PROFIT, &isnull);
	lead->potential = isnull ? NULL : DatumGetNumeric(d);
	d = column_value(row, COL_LTV_UPLIFT, &isnull);
	lead->uplift = isnull ? NULL : DatumGetNumeric(d);
	if (lead->have_p && lead->potential != NULL)
		lead->forecast = times_p(double_numeric(lead->p_win),
								 lead->uplift == NULL ? lead->potential :
								 DatumGetNumeric(DirectFunctionCall2(numeric_sub,
																	 NumericGetDatum(lead->potential),
																	 NumericGetDatum(lead->uplift))));
	d = column_value(row, COL_SCORE_FLAGS, &isnull);
	if (!isnull)
	{
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
						  TYPALIGN_INT, &flags, NULL, &nflags);
		for (i = 0; i < nflags; i++)
			flag(lead, TextDatumGetCString(flags[i]));
	}
}

/* Whether an update set one of the scoring inputs */
static bool
inputs_updated(TriggerData *trigdata)
{
	const Bitmapset *updated = trigdata->tg_updatedcols;
	int			i;

	for (i = 0; i < lengthof(input_columns); i++)
		if (bms_is_member(Attnums[input_columns[i]] -
						  FirstLowInvalidHeapAttributeNumber, updated))
			return true;
	return false;
}

/* A lead's status and assignee, which decide the managers' loads */
typedef struct Assignment
{
	const char *status;
	int32		assignee;		/* 0: nobody */
} Assignment;

/* Reads status and assignee from a row */
static void
read_assignment(Assignment *a, const LeadRow *row)
{
	bool		isnull;
	Datum		d;

	a->status = text_column(row, COL_STATUS);
	d = column_value(row, COL_ASSIGNEE_ID, &isnull);
	a->assignee = isnull ? 0 : DatumGetInt32(d);
}

/* Whether a lead counts among its assignee's open leads */
static bool
counts_open(const Assignment *a)
{
	return a->assignee != 0 && a->status != NULL &&
		(strcmp(a->status, "assigned") == 0 || strcmp(a->status, "accepted") == 0);
}

/*
 * Moves the managers' loads from the old assignment to the new one: the
 * old assignee has one open lead less, the new one one more, received in
 * the working day at now with its expected profit.
 */
static void
adjust_loads(const Assignment *old, const Assignment *new, Numeric profit,
			 TimestampTz now)
{
	bool		was = old != NULL && counts_open(old);
	bool		is = counts_open(new);
	bool		same = was && is && old->assignee == new->assignee;

	if (same || (!was && !is))
		return;
	SPI_connect();
	/* two rows in manager order, as every writer of several takes them */
	if (was && is && old->assignee > new->assignee)
	{
		manager_load_adjust(new->assignee, +1, true, profit, now);
		manager_load_adjust(old->assignee, -1, false, NULL, now);
	}
	else
	{
		if (was)
			manager_load_adjust(old->assignee, -1, false, NULL, now);
		if (is)
			manager_load_adjust(new->assignee, +1, true, profit, now);
	}
	SPI_finish();
}

/*
 * Whether the lead now counts among a manager's open leads and did not
 * before, or not for that manager.
 */
static bool
moved_to_manager(const Assignment *old, const Assignment *new)
{
	return counts_open(new) &&
		(old == NULL || !counts_open(old) || old->assignee != new->assignee);
}

/* Whether no manager has let the lead lapse yet */
static bool
never_lapsed(const LeadRow *row)
{
	bool		isnull;
	Datum		d = column_value(row, COL_LAPSED_IDS, &isnull);

	return isnull || ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(d)),
									ARR_DIMS(DatumGetArrayTypeP(d))) == 0;
}

/* Reads the managers a lead lapsed with */
static void
read_lapsed(RouteRequest *req, const LeadRow *row)
{
	bool		isnull;
	Datum		d = column_value(row, COL_LAPSED_IDS, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	int32	   *ids;

	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	ids = palloc(sizeof(int32) * Max(n, 1));
	for (i = 0; i < n; i++)
		ids[i] = nulls[i] ? 0 : DatumGetInt32(elems[i]);
	req->lapsed = ids;
	req->nlapsed = n;
}

/*
 * Routes a lead that became ready and sets the routing columns; updates
 * *assignment to what was decided.
 */
static void
route(ScoredLead *lead, const Assignment *old, Assignment *assignment,
	  ScoringConfig *config, const LeadRow *row, Outputs *out,
	  TimestampTz now)
{
	RouteRequest req;
	RouteResult res;

	memset(&req, 0, sizeof(req));
	req.lead_id = lead->in.lead_id;
	req.priority = lead->priority;
	req.now = now;
	req.requeue = old != NULL && old->status && strcmp(old->status, "queued") == 0;
	req.reassign = old != NULL && old->status && strcmp(old->status, "assigned") == 0;
	req.may_wait = old == NULL;
	req.lookup = lead_lookup;
	req.ctx = lead;
	read_lapsed(&req, row);

	SPI_connect();
	route_lead(&req, config, &res);
	SPI_finish();

	if (res.flag)
		flag(lead, res.flag);
	assignment->status = res.status;
	assignment->assignee = res.manager_id;
	set_output(out, COL_STATUS, CStringGetTextDatum(res.status), false);
	set_output(out, COL_ASSIGNEE_ID, Int32GetDatum(res.manager_id),
			   res.manager_id == 0);
	set_output(out, COL_ASSIGNED_AT, TimestampTzGetDatum(now), res.manager_id == 0);
	set_output(out, COL_ROUTED_EXPECTED_PROFIT, NumericGetDatum(lead->expected),
			   res.manager_id == 0 || lead->expected == NULL);
}

/*
 * The row the trigger returns: the one it was given, outputs set, formed
 * in the current memory context
 */
static HeapTuple
modified_row(HeapTuple tup, TupleDesc desc, LeadRow *row, const Outputs *out)
{
	HeapTuple	result;
	int			i;

	for (i = 0; i < out->n; i++)
	{
		row->values[out->cols[i] - 1] = out->values[i];
		row->nulls[out->cols[i] - 1] = out->nulls[i];
	}
	result = heap_form_tuple(desc, row->values, row->nulls);
	/* as heap_modify_tuple() does: the new row keeps the old one's identity */
	result->t_data->t_ctid = tup->t_data->t_ctid;
	result->t_self = tup->t_self;
	result->t_tableOid = tup->t_tableOid;
	return result;
}

/*
 * scoring.lead_score_trigger(): BEFORE INSERT OR UPDATE OR DELETE, FOR EACH
 * ROW.  Scores a lead whose inputs were set, routes it when it becomes
 * ready ('new'), and keeps the managers' loads in step with its assignment.
 */
Datum
scoring_lead_score_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tup;
	LeadRow		row,
				oldrow;
	ScoredLead	lead;
	ScoringConfig *config;
	MemoryContext caller;
	Outputs		out;
	Assignment	old,
				new;
	bool		is_update,
				rescore,
				ready,
				moved,
				unfrozen;
	TimestampTz now;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scoring.lead_score_trigger() must be a BEFORE row trigger")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	tup = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;

	if (RowContext == NULL)
		RowContext = AllocSetContextCreate(TopMemoryContext,
										   "scoring lead row",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(RowContext);
	caller = MemoryContextSwitchTo(RowContext);

	if (AttnumsRelid != RelationGetRelid(rel))
		resolve_attnums(rel);
	lead_row(&row, tup, desc);
	now = scoring_now();
	/* a changed or deleted lead may change histories already counted */
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		client_history_forget();

	/* a deleted lead leaves its manager's open leads */
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		read_assignment(&old, &row);
		new.status = NULL;
		new.assignee = 0;
		adjust_loads(&old, &new, NULL, now);
		MemoryContextSwitchTo(caller);
		return PointerGetDatum(tup);
	}

	read_assignment(&new, &row);
	if (is_update)
	{
		lead_row(&oldrow, trigdata->tg_trigtuple, desc);
		read_assignment(&old, &oldrow);
	}
	rescore = !is_update || inputs_updated(trigdata);
	ready = new.status != NULL && strcmp(new.status, "new") == 0 &&
		(!is_update || old.status == NULL || strcmp(old.status, "new") != 0);
	out.n = 0;

	moved = moved_to_manager(is_update ? &old : NULL, &new);
	if (rescore || ready || moved)
	{
		/* client first: opening its relations may process invalidations */
		read_lead(&lead, &row, is_update ? NULL : trigdata);
		config = scoring_config();
		if (rescore)
		{
			score_lead(&lead, config);
			score_outputs(&lead, &out);
		}
		else
			read_score(&lead, &row);
		if (ready)
			route(&lead, is_update ? &old : NULL, &new, config, &row,
				  &out, now);
		else if (moved && strcmp(new.status, "assigned") == 0)
		{
			/* given by hand: the acceptance clock and the plan start now */
			set_output(&out, COL_ASSIGNED_AT, TimestampTzGetDatum(now), false);
			set_output(&out, COL_ROUTED_EXPECTED_PROFIT,
					   NumericGetDatum(lead.expected), lead.expected == NULL);
		}
		set_output(&out, COL_SCORE_FLAGS, flags_datum(lead.flags), false);

		/*
		 * Forecasts use the score as it was when the lead was first routed
		 * to a manager, or first scored: a later rescore never moves them,
		 * nor does a second routing after a lapse.
		 */
		unfrozen = !is_update ||
			oldrow.nulls[Attnums[COL_FORECAST_PROFIT] - 1] ||
			(new.status != NULL && strcmp(new.status, "assigned") == 0 &&
			 oldrow.nulls[Attnums[COL_ASSIGNED_AT] - 1] &&
			 never_lapsed(&row));
		if (unfrozen && lead.forecast != NULL)
			set_output(&out, COL_FORECAST_PROFIT, NumericGetDatum(lead.forecast), false);
	}
	else
		lead.expected = NULL;

	adjust_loads(is_update ? &old : NULL, &new, lead.expected, now);

	MemoryContextSwitchTo(caller);
	if (out.n > 0)
		tup = modified_row(tup, desc, &row, &out);
	return PointerGetDatum(tup);
}
