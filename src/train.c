/*-------------------------------------------------------------------------
 *
 * train.c
 *		scoring.train(): fit a model on closed leads and activate it.
 *
 * One sequential pass reads every lead closed as won or lost in the
 * window, with its client and the client's history, and turns it into
 * tokens ("shop=web03", the number "budget", ...) through the same
 * features_emit_fixed() that scores leads.  Rare levels are then pooled
 * into "(other)", numbers standardised, and identical rows compressed into
 * weighted patterns, on which fit.c runs the regression: first on the
 * training fold, to measure it on the holdout fold, then on all leads for
 * the model that is stored.  The same call learns the lifetime uplift per
 * client segment and, on request or when there are none yet, the priority
 * bands.
 *
 * IDENTIFICATION
 *		src/train.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bins.h"
#include "fit.h"
#include "scoring.h"

PG_FUNCTION_INFO_V1(scoring_train);

/* Options of train(), with their defaults */
typedef struct TrainOptions
{
	double		l2;				/* regularisation strength */
	int			min_count;		/* rarer levels are pooled into "(other)" */
	int			bins;			/* ranges per number (bins.c); < 2: none */
	double		holdout;		/* share of leads measured, not fitted */
	int64		seed;			/* chooses the holdout leads */
	int			max_iter;
	bool		ltv;			/* learn the lifetime uplift */
	int			ltv_months;
	int			set_bands;		/* 1 yes, 0 no, -1 when there are none */
	double		band_shares[4];
	bool		activate;
} TrainOptions;

/* Running moments of a numeric feature, for scaling and skewness */
typedef struct Moments
{
	int64		n;
	double		mean;
	double		m2;
	double		m3;
	double		min;
	double		max;
} Moments;

/* A token: a level of a category, or a numeric field */
typedef struct Token
{
	char	   *name;			/* "field=level", or "field" for numbers */
	char	   *field;
	bool		numeric;
	bool		special;		/* "(missing)"/"(present)": never pooled */
	int64		count;
	Moments		logged;			/* of the signed log of the values */
	Moments		raw;			/* of the values themselves */
	bool		log;			/* which of the two the model uses */
	int32		column;			/* -1: dropped */
	/* a kept number's ranges (bins.c): ncuts cuts, ncuts + 1 columns */
	int			ncuts;
	double	   *cuts;
	char	  **cut_texts;
	float4	   *bounds;
	int64	   *bin_count;		/* values in each range */
	int32	   *bin_column;		/* -1: too rare for a column of its own */
} Token;

typedef struct TokenEntry
{
	const char *name;
	uint32		hash;
	char		status;
	int32		token;
} TokenEntry;

#define SH_PREFIX		tokens
#define SH_ELEMENT_TYPE TokenEntry
#define SH_KEY			name
#include "strhash.h"

/* One token of one lead */
typedef struct RawEntry
{
	int32		token;
	float4		value;
} RawEntry;

/* What training keeps of each lead besides its tokens */
typedef struct LeadRow
{
	int64		raw_start;
	double		potential;		/* budget x margin, NaN when unknown */
	int32		segment;
	bool		won;
	char		fold;			/* 0 training, 1 holdout */
} LeadRow;

/* A pattern being deduplicated: where its entries are in the arena */
typedef struct PatternEntry
{
	uint32		hash;
	char		status;
	int64		pattern;
} PatternEntry;

/* A client at a moment: its history is the same for all its leads then */
typedef struct HistoryKey
{
	int64		client_id;
	TimestampTz at;
} HistoryKey;

typedef struct History
{
	HistoryKey	key;
	char		status;
	int64		leads;
	int64		wins;
} History;

/* The finaliser of MurmurHash3 over the key's two halves */
static inline uint32
history_hash(HistoryKey k)
{
	uint64		h = (uint64) k.client_id * UINT64CONST(0x9E3779B97F4A7C15) ^ (uint64) k.at;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32) h;
}

#define SH_PREFIX		histories
#define SH_ELEMENT_TYPE History
#define SH_KEY_TYPE		HistoryKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k) history_hash(k)
#define SH_EQUAL(tb, a, b) ((a).client_id == (b).client_id && (a).at == (b).at)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Everything a training run holds */
typedef struct Trainer
{
	FeatureSink sink;
	TrainOptions opt;
	MemoryContext cxt;			/* where everything below lives */

	/* tokens */
	tokens_hash *token_index;
	Token	   *tokens;
	int32		ntokens;
	int32		tokens_cap;
	StringInfoData keybuf;
	StringInfoData fieldbuf;	/* scratch of features_emit_all_free() */
	StringInfoData levelbuf;

	/* the client history of every (client, moment) of the window */
	histories_hash *histories;

	/* raw leads: the entries of lead i start at rows[i].raw_start */
	RawEntry   *raw;
	int64		nraw;
	int64		raw_cap;
	LeadRow    *rows;
	int64		nrows;
	int64		rows_cap;
	int64		nwon;

	/* segments for the lifetime uplift */
	tokens_hash *segment_index;
	char	  **segments;
	int32		nsegments;
	int32		segments_cap;
	double	   *ltv;

	/* columns and patterns */
	char	  **column_names;
	Token	  **column_token;	/* the numeric token of a column, or NULL */
	int32		ncols;
	int64		columns_cap;
	Patterns	pt;
	int64	   *row_pattern;
} Trainer;

/*
 * Grows an array of elements of size sz, kept in cxt, to hold at least
 * need of them.
 */
static void *
grow(MemoryContext cxt, void *array, int64 *cap, int64 need, Size sz)
{
	int64		newcap;

	if (need <= *cap)
		return array;
	newcap = Max(need, *cap * 2);
	newcap = Max(newcap, 1024);
	array = array ? repalloc_huge(array, newcap * sz) :
		MemoryContextAllocHuge(cxt, newcap * sz);
	*cap = newcap;
	return array;
}

/* ----------------------------------------------------------------
 * Options
 * ----------------------------------------------------------------
 */

/* Complains about an option */
static void
bad_option(const char *name, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid train option \"%s\"", name),
			 errdetail("%s", what),
			 errhint("Options are l2, min_count, holdout, seed, max_iter, ltv, ltv_months, set_bands, band_shares and activate.")));
}

/* Reads a numeric option value */
static double
option_number(const char *name, JsonbValue *v, double lo, double hi)
{
	double		d;

	if (v->type != jbvNumeric || !numeric_to_finite_double(v->val.numeric, &d))
		bad_option(name, "It must be a number.");
	if (d < lo || d > hi)
		bad_option(name, psprintf("It must be between %g and %g.", lo, hi));
	return d;
}

/* Reads a boolean option value */
static bool
option_bool(const char *name, JsonbValue *v)
{
	if (v->type != jbvBool)
		bad_option(name, "It must be true or false.");
	return v->val.boolean;
}

/* Reads band_shares: four increasing cumulative shares in (0, 1) */
static void
option_shares(TrainOptions *opt, JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad_option("band_shares", "It must be an array of four shares.");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n == 4)
			bad_option("band_shares", "It must have exactly four shares.");
		opt->band_shares[n] = option_number("band_shares", &e, 0.0, 1.0);
		if (opt->band_shares[n] <= 0 || opt->band_shares[n] >= 1 ||
			(n > 0 && opt->band_shares[n] <= opt->band_shares[n - 1]))
			bad_option("band_shares", "Shares must increase strictly between 0 and 1.");
		n++;
	}
	if (n != 4)
		bad_option("band_shares", "It must have exactly four shares.");
}

/* Parses the options object over the defaults */
static void
parse_options(Jsonb *options, TrainOptions *opt)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	opt->l2 = 1.0;
	opt->min_count = 20;
	opt->bins = 8;
	opt->holdout = 0.2;
	opt->seed = 0;
	opt->max_iter = 500;
	opt->ltv = true;
	opt->ltv_months = 12;
	opt->set_bands = -1;
	opt->band_shares[0] = 0.05;
	opt->band_shares[1] = 0.20;
	opt->band_shares[2] = 0.50;
	opt->band_shares[3] = 0.85;
	opt->activate = true;

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("train options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "l2") == 0)
			opt->l2 = option_number(key, &v, 1e-9, 1e9);
		else if (strcmp(key, "min_count") == 0)
			opt->min_count = (int) option_number(key, &v, 1, 1e9);
		else if (strcmp(key, "bins") == 0)
			opt->bins = (int) option_number(key, &v, 0, BINS_MAX);
		else if (strcmp(key, "holdout") == 0)
			opt->holdout = option_number(key, &v, 0, 0.9);
		else if (strcmp(key, "seed") == 0)
			opt->seed = (int64) option_number(key, &v, -1e15, 1e15);
		else if (strcmp(key, "max_iter") == 0)
			opt->max_iter = (int) option_number(key, &v, 1, 100000);
		else if (strcmp(key, "ltv") == 0)
			opt->ltv = option_bool(key, &v);
		else if (strcmp(key, "ltv_months") == 0)
			opt->ltv_months = (int) option_number(key, &v, 1, 120);
		else if (strcmp(key, "set_bands") == 0)
			opt->set_bands = option_bool(key, &v) ? 1 : 0;
		else if (strcmp(key, "band_shares") == 0)
			option_shares(opt, &v);
		else if (strcmp(key, "activate") == 0)
			opt->activate = option_bool(key, &v);
		else
			bad_option(key, "There is no such option.");
	}
}

/* ----------------------------------------------------------------
 * The pass over the data
 * ----------------------------------------------------------------
 */

/*
 * Finds or adds a token: a number (level NULL) or a level of a category,
 * named name.  The hash is taken over len bytes of name.
 */
static Token *
intern(Trainer *tr, const char *name, int len, const char *field,
	   const char *level)
{
	bool		found;
	TokenEntry *e = tokens_insert_hash(tr->token_index, name,
									   hash_bytes((const unsigned char *) name, len),
									   &found);

	if (!found)
	{
		Token	   *t;
		int64		cap = tr->tokens_cap;

		tr->tokens = grow(tr->cxt, tr->tokens, &cap, tr->ntokens + 1, sizeof(Token));
		tr->tokens_cap = (int32) cap;
		t = &tr->tokens[tr->ntokens];
		memset(t, 0, sizeof(Token));
		t->name = MemoryContextStrdup(tr->cxt, name);
		t->field = MemoryContextStrdup(tr->cxt, field);
		t->numeric = level == NULL;
		t->special = level != NULL && (strcmp(level, LEVEL_MISSING) == 0 ||
									   strcmp(level, LEVEL_PRESENT) == 0);
		t->logged.min = t->raw.min = INFINITY;
		t->logged.max = t->raw.max = -INFINITY;
		e->name = t->name;		/* the hash keeps the lasting copy */
		e->token = tr->ntokens++;
	}
	return &tr->tokens[e->token];
}

/* Appends a token to the current lead */
static void
add_entry(Trainer *tr, Token *t, double value)
{
	tr->raw = grow(tr->cxt, tr->raw, &tr->raw_cap, tr->nraw + 1, sizeof(RawEntry));
	tr->raw[tr->nraw].token = (int32) (t - tr->tokens);
	tr->raw[tr->nraw].value = (float4) value;
	tr->nraw++;
	t->count++;
}

/* Sink: a category level */
static void
train_category(FeatureSink *sink, const char *field, const char *level)
{
	Trainer    *tr = (Trainer *) sink;
	const char *lv = level ? level : LEVEL_MISSING;

	/* "field=level", without a format: this runs for every level of every lead */
	resetStringInfo(&tr->keybuf);
	appendStringInfoString(&tr->keybuf, field);
	appendStringInfoChar(&tr->keybuf, '=');
	appendStringInfoString(&tr->keybuf, lv);
	add_entry(tr, intern(tr, tr->keybuf.data, tr->keybuf.len, field, lv), 1.0);
}

/* Adds a value to running moments (one pass, numerically stable) */
static void
moments_add(Moments *m, double x)
{
	int64		n1 = m->n++;
	double		delta = x - m->mean;
	double		delta_n = delta / m->n;
	double		term1 = delta * delta_n * n1;

	m->mean += delta_n;
	m->m3 += term1 * delta_n * (m->n - 2) - 3 * delta_n * m->m2;
	m->m2 += term1;
	m->min = Min(m->min, x);
	m->max = Max(m->max, x);
}

/* The sample standard deviation */
static double
moments_std(const Moments *m)
{
	return m->n > 1 ? sqrt(m->m2 / (m->n - 1)) : 0;
}

/*
 * Sink: a number.  The lead keeps its signed log; the trainer keeps the
 * moments of both the values and their logs, to choose between them.
 */
static void
train_number(FeatureSink *sink, const char *field, double value)
{
	Trainer    *tr = (Trainer *) sink;
	Token	   *t = intern(tr, field, strlen(field), field, NULL);
	double		x = feature_transform(value);

	add_entry(tr, t, x);
	moments_add(&t->logged, x);
	moments_add(&t->raw, value);
}

/*
 * Whether a number is better taken as its log: money, counts and turnovers
 * are non-negative and skewed to the right (skewness over 1), and their
 * logs are not; rates, scores and indices are taken as they are.
 */
static bool
prefers_log(const Moments *raw)
{
	double		skew;

	if (raw->n < 3 || raw->min < 0 || !isfinite(raw->m2) || !isfinite(raw->m3) ||
		raw->m2 <= 0)
		return raw->min >= 0 || !isfinite(raw->m2);
	skew = sqrt((double) raw->n) * raw->m3 / pow(raw->m2, 1.5);
	return skew > 1.0;
}

/* The moments of the transform a numeric token uses */
static const Moments *
token_moments(const Token *t)
{
	return t->log ? &t->logged : &t->raw;
}

/* A stored (signed log) value in the transform the token uses */
static double
token_value(const Token *t, double stored)
{
	if (t->log)
		return stored;
	return stored >= 0 ? expm1(stored) : -expm1(-stored);
}

/* The segment id of a lead, adding the segment when new */
static int32
segment_id(Trainer *tr, const LeadInput *lead)
{
	char	   *seg = client_segment(lead);
	bool		found;
	TokenEntry *e = tokens_insert(tr->segment_index, seg, &found);

	if (!found)
	{
		int64		cap = tr->segments_cap;

		tr->segments = grow(tr->cxt, tr->segments, &cap, tr->nsegments + 1, sizeof(char *));
		tr->segments_cap = (int32) cap;
		tr->segments[tr->nsegments] = MemoryContextStrdup(tr->cxt, seg);
		e->name = tr->segments[tr->nsegments];
		e->token = tr->nsegments++;
	}
	return e->token;
}

/* Whether a lead belongs to the holdout fold: a hash of its id and the seed */
static bool
in_holdout(const TrainOptions *opt, int64 lead_id)
{
	uint64		h;

	if (opt->holdout <= 0)
		return false;
	h = hash_bytes_extended((const unsigned char *) &lead_id, sizeof(lead_id),
							(uint64) opt->seed);
	return (double) (h % 1000000) < opt->holdout * 1000000;
}

/* The columns of a row of the training query (read_training_data) */
#define TRAIN_COLUMNS	16

/* A text column of a deformed row as a C string, NULL when null */
static inline char *
text_column(Datum *v, bool *null, int col)
{
	return null[col] ? NULL : TextDatumGetCString(v[col]);
}

/* ----------------------------------------------------------------
 * The client history of the training leads
 * ----------------------------------------------------------------
 */

/*
 * The history of every client at every moment of [since, until) that has
 * a lead: the client's leads created before that moment, and those of
 * them won and closed by then, exactly what the trigger's walk counts
 * (src/client.c).  One pass over lead_client_history_idx in (client,
 * created_at) order: at each new moment the wins closed by then are
 * taken from the heap of closing moments (closings.c), the moment's
 * history is kept, and its leads join the count.  Linear in the leads
 * (times log of the wins pending), where a lookup per lead would walk
 * each client's history once per lead.
 */
static histories_hash *
read_histories(MemoryContext cxt, TimestampTz since, TimestampTz until)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(until)};
	histories_hash *histories = histories_create(cxt, 1024, NULL);
	Portal		portal;
	Closings	pending = {NULL, 0, 0, CurrentMemoryContext};
	int64		client = 0;
	bool		have_client = false;
	TimestampTz at = 0;
	int64		leads = 0,
				wins = 0;

	portal = SPI_cursor_open_with_args(
		NULL,
		"SELECT client_id, created_at, CASE WHEN status = 'won' THEN closed_at END"
		"  FROM scoring.lead"
		" WHERE client_id IS NOT NULL AND created_at < $1"
		" ORDER BY client_id, created_at",
		1, argtypes, args, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		c = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			TimestampTz t = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
			Datum		closed = SPI_getbinval(tup, desc, 3, &isnull);

			if (!have_client || c != client)
			{
				client = c;
				have_client = true;
				leads = wins = 0;
				pending.n = 0;
			}
			if (leads == 0 || t != at)
			{
				History    *h;
				HistoryKey	key;
				bool		found;

				at = t;
				wins += closings_settle(&pending, at);
				if (at >= since)
				{
					key.client_id = client;
					key.at = at;
					h = histories_insert(histories, key, &found);
					h->leads = leads;
					h->wins = wins;
				}
			}
			leads++;
			if (!isnull)
				closings_push(&pending, DatumGetTimestampTz(closed));
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (pending.v != NULL)
		pfree(pending.v);
	return histories;
}

/*
 * Takes one training lead from a result row into the trainer.  Runs in a
 * short-lived context; what lasts goes to tr->cxt.
 */
static void
read_training_row(Trainer *tr, HeapTuple tup, TupleDesc desc)
{
	LeadInput	lead;
	Datum		v[TRAIN_COLUMNS];
	bool		null[TRAIN_COLUMNS];
	int64		i = tr->nrows;
	LeadRow    *r;

	heap_deform_tuple(tup, desc, v, null);
	memset(&lead, 0, sizeof(lead));
	lead.lead_id = DatumGetInt64(v[0]);
	lead.shop = text_column(v, null, 1);
	lead.channel = text_column(v, null, 2);
	lead.category = text_column(v, null, 3);
	lead.brand = text_column(v, null, 4);
	lead.budget = null[5] ? NULL : DatumGetNumeric(v[5]);
	lead.features = null[6] ? NULL : DatumGetJsonbP(v[6]);
	lead.client_kind = text_column(v, null, 7);
	lead.has_client = lead.client_kind != NULL;
	lead.client_industry = text_column(v, null, 8);
	lead.client_okved = text_column(v, null, 9);
	lead.client_core = null[10] ? -1 : DatumGetBool(v[10]) ? 1 : 0;
	lead.client_turnover = null[11] ? NULL : DatumGetNumeric(v[11]);
	if (!null[12])
	{
		HistoryKey	key;
		History    *h;

		key.client_id = DatumGetInt64(v[12]);
		key.at = DatumGetTimestampTz(v[13]);
		h = histories_lookup(tr->histories, key);
		if (h != NULL)
		{
			lead.prior_leads = h->leads;
			lead.prior_wins = h->wins;
		}
	}

	tr->rows = grow(tr->cxt, tr->rows, &tr->rows_cap, i + 1, sizeof(LeadRow));
	r = &tr->rows[i];
	r->raw_start = tr->nraw;
	r->won = DatumGetBool(v[14]);
	r->fold = in_holdout(&tr->opt, lead.lead_id) ? 1 : 0;
	r->potential = NAN;
	if (!null[15] && (!numeric_to_finite_double(DatumGetNumeric(v[15]), &r->potential) ||
					  r->potential < 0))
		r->potential = NAN;
	r->segment = segment_id(tr, &lead);
	tr->nwon += r->won;

	features_emit_fixed(&lead, &tr->sink);
	features_emit_all_free(lead.features, &tr->sink, &tr->fieldbuf, &tr->levelbuf);
	tr->nrows++;
}

/*
 * Reads every lead closed as won or lost created in [since, until), with
 * its client, its history before it (read_histories) and budget x margin
 * (for the bands; only for budgets the trigger would score), in one pass.
 */
static void
read_training_data(Trainer *tr, TimestampTz since, TimestampTz until,
				   ScoringConfig *config)
{
	Oid			argtypes[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, NUMERICOID, NUMERICOID};
	Datum		args[4] = {TimestampTzGetDatum(since), TimestampTzGetDatum(until),
		NumericGetDatum(config->default_margin), NumericGetDatum(config->max_budget)};
	MemoryContext keep = CurrentMemoryContext;
	MemoryContext batch = AllocSetContextCreate(keep, "scoring train batch",
												ALLOCSET_DEFAULT_SIZES);
	Portal		portal;

	tr->histories = read_histories(tr->cxt, since, until);
	portal = SPI_cursor_open_with_args(
		NULL,
		"SELECT l.lead_id, l.shop, l.channel, l.category, l.brand, l.budget,"
		"       l.features, c.kind, c.industry, c.okved, c.core_industry,"
		"       c.annual_turnover, l.client_id, l.created_at,"
		"       l.status = 'won',"
		"       CASE WHEN l.budget <= $4 THEN l.budget * coalesce(b.margin, $3) END"
		"  FROM scoring.lead l"
		"  LEFT JOIN scoring.client c ON c.client_id = l.client_id"
		"  LEFT JOIN scoring.brand b ON b.brand = l.brand"
		" WHERE l.status IN ('won', 'lost')"
		"   AND l.created_at >= $1 AND l.created_at < $2",
		4, argtypes, args, NULL, true, CURSOR_OPT_NO_SCROLL);

	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		MemoryContextSwitchTo(batch);
		for (i = 0; i < SPI_processed; i++)
			read_training_row(tr, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(keep);
		MemoryContextReset(batch);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch);
}

/* ----------------------------------------------------------------
 * Columns and patterns
 * ----------------------------------------------------------------
 */

/* Adds a column for a name; returns its number */
static int32
add_column(Trainer *tr, const char *name, Token *numeric)
{
	int64		cap = tr->columns_cap;

	/* both arrays grow alike from the same capacity */
	tr->column_names = grow(tr->cxt, tr->column_names, &cap, tr->ncols + 1,
							sizeof(char *));
	cap = tr->columns_cap;
	tr->column_token = grow(tr->cxt, tr->column_token, &cap, tr->ncols + 1,
							sizeof(Token *));
	tr->columns_cap = cap;
	tr->column_names[tr->ncols] = MemoryContextStrdup(tr->cxt, name);
	tr->column_token[tr->ncols] = numeric;
	return tr->ncols++;
}

/* How many stored values of a number choose its cuts, at most */
#define BIN_SAMPLE		16384

/*
 * The stored values of every number seen min_count times, every stride-th
 * one of each (deterministic: the same data gives the same cuts).
 */
static float4 **
sample_numbers(Trainer *tr, int *nsample)
{
	float4	  **sample = palloc0(sizeof(float4 *) * tr->ntokens);
	int64	   *seen = palloc0(sizeof(int64) * tr->ntokens);
	int64	   *stride = palloc0(sizeof(int64) * tr->ntokens);
	int64		k;
	int32		i;

	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];

		if (!t->numeric || t->count < tr->opt.min_count)
			continue;
		stride[i] = t->count / BIN_SAMPLE + 1;
		sample[i] = palloc(sizeof(float4) * (t->count / stride[i] + 1));
	}
	for (k = 0; k < tr->nraw; k++)
	{
		int32		i = tr->raw[k].token;

		if (sample[i] != NULL && seen[i]++ % stride[i] == 0)
			sample[i][nsample[i]++] = tr->raw[k].value;
	}
	pfree(seen);
	pfree(stride);
	return sample;
}

/*
 * Cuts every number seen min_count times into at most opt.bins ranges
 * (bins.c) and counts the values in each range.
 */
static void
choose_bins(Trainer *tr)
{
	int		   *nsample = palloc0(sizeof(int) * tr->ntokens);
	float4	  **sample;
	int64		k;
	int32		i;

	if (tr->opt.bins < 2)
		return;
	sample = sample_numbers(tr, nsample);
	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];
		int			b;

		if (sample[i] == NULL)
			continue;
		t->cuts = MemoryContextAlloc(tr->cxt, sizeof(double) * tr->opt.bins);
		t->ncuts = bins_choose(sample[i], nsample[i], tr->opt.bins, t->cuts);
		t->cut_texts = MemoryContextAlloc(tr->cxt, sizeof(char *) * Max(t->ncuts, 1));
		t->bounds = MemoryContextAlloc(tr->cxt, sizeof(float4) * Max(t->ncuts, 1));
		t->bin_count = MemoryContextAllocZero(tr->cxt, sizeof(int64) * (t->ncuts + 1));
		t->bin_column = MemoryContextAlloc(tr->cxt, sizeof(int32) * (t->ncuts + 1));
		for (b = 0; b < t->ncuts; b++)
		{
			t->cut_texts[b] = MemoryContextStrdup(tr->cxt, bin_cut_text(t->cuts[b]));
			t->bounds[b] = bin_bound(t->cuts[b]);
		}
		pfree(sample[i]);
	}
	for (k = 0; k < tr->nraw; k++)
	{
		Token	   *t = &tr->tokens[tr->raw[k].token];

		if (t->ncuts > 0)
			t->bin_count[bin_of_stored(t->bounds, t->ncuts, tr->raw[k].value)]++;
	}
}

/*
 * Gives each range of a kept number seen at least min_count times a column
 * "field=[a, b)", right after the number's own so that a lead's columns
 * come nearly in order.  A number whose range names are taken by levels of
 * a category of the same field (a key that is sometimes a string) keeps
 * its straight line only.
 */
static void
add_bin_columns(Trainer *tr, Token *t)
{
	char	  **names = palloc(sizeof(char *) * (t->ncuts + 1));
	int			b;

	for (b = 0; b <= t->ncuts; b++)
	{
		names[b] = psprintf("%s=%s", t->field, bin_label(t->cut_texts, t->ncuts, b));
		if (tokens_lookup(tr->token_index, names[b]) != NULL)
		{
			t->ncuts = 0;		/* a category has that name */
			return;
		}
	}
	for (b = 0; b <= t->ncuts; b++)
		t->bin_column[b] = t->bin_count[b] >= tr->opt.min_count ?
			add_column(tr, names[b], NULL) : -1;
}

/*
 * Gives every token its column.  A field seen in fewer than min_count
 * leads is dropped whole; within a field, levels seen at least min_count
 * times have their own column and rarer ones share the field's "(other)";
 * numbers need min_count values that are not all the same.  Column 0 is
 * the intercept.
 */
static void
assign_columns(Trainer *tr)
{
	tokens_hash *other = tokens_create(tr->cxt, 64, NULL);
	tokens_hash *fields = tokens_create(tr->cxt, 64, NULL);
	int64	   *field_count = palloc0(sizeof(int64) * Max(tr->ntokens, 1));
	int32		nfields = 0;
	int32		i;
	bool		found;
	TokenEntry *e;

	/*
	 * How many leads carry each field: one level of it, or one number (whose
	 * "(present)" level would count it twice).
	 */
	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];
		size_t		len = strlen(t->name);

		if (len > sizeof(LEVEL_PRESENT) &&
			strcmp(t->name + len - sizeof(LEVEL_PRESENT) + 1, LEVEL_PRESENT) == 0)
			continue;
		e = tokens_insert(fields, t->field, &found);
		if (!found)
			e->token = nfields++;
		field_count[e->token] += t->count;
	}

	add_column(tr, "(intercept)", NULL);
	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];

		e = tokens_lookup(fields, t->field);
		if (e == NULL || field_count[e->token] < tr->opt.min_count)
			t->column = -1;
		else if (t->numeric)
		{
			t->log = prefers_log(&t->raw);
			t->column = (t->count >= tr->opt.min_count &&
						 moments_std(token_moments(t)) > 1e-6) ?
				add_column(tr, t->name, t) : -1;
			if (t->column < 0)
				t->ncuts = 0;
			else if (t->ncuts > 0)
				add_bin_columns(tr, t);
		}
		else if (t->count == tr->nrows)
			t->column = -1;		/* in every lead: the intercept says it */
		else if (t->count >= tr->opt.min_count || t->special)
			t->column = add_column(tr, t->name, NULL);
		else
		{
			e = tokens_insert(other, t->field, &found);
			if (!found)
			{
				char	   *name = psprintf("%s=%s", t->field, LEVEL_OTHER);

				e->name = MemoryContextStrdup(tr->cxt, t->field);
				e->token = add_column(tr, name, NULL);
			}
			t->column = e->token;
		}
	}
}

/*
 * Orders a lead's (column, value) pairs by column.  Columns are numbered in
 * the order tokens were first met, a number's ranges after it, so a lead's
 * pairs come nearly in order and insertion sort is the fast way.
 */
static void
sort_entries(RawEntry *row, int64 len)
{
	int64		i,
				j;

	for (i = 1; i < len; i++)
	{
		RawEntry	e = row[i];

		for (j = i; j > 0 && row[j - 1].token > e.token; j--)
			row[j] = row[j - 1];
		row[j] = e;
	}
}

#define SH_PREFIX		patterns
#define SH_ELEMENT_TYPE PatternEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			pattern
#define SH_HASH_KEY(tb, k) pattern_hash((Trainer *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) pattern_equal((Trainer *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#include "lib/simplehash.h"

/*
 * Pattern -1 stands for the candidate being built past the end of the
 * arena; other numbers are patterns already stored.
 */
static inline void
pattern_span(Trainer *tr, int64 p, int64 *from, int64 *to)
{
	Patterns   *pt = &tr->pt;

	*from = pt->start[p < 0 ? pt->npatterns : p];
	*to = p < 0 ? *from + (int64) tr->pt.n[pt->npatterns] : pt->start[p + 1];
}

static inline uint32
pattern_hash(Trainer *tr, int64 p)
{
	int64		from,
				to;
	uint32		h;

	pattern_span(tr, p, &from, &to);
	h = hash_bytes((const unsigned char *) &tr->pt.cols[from],
				   (int) ((to - from) * sizeof(int32)));
	h ^= hash_bytes((const unsigned char *) &tr->pt.vals[from],
					(int) ((to - from) * sizeof(float4)));
	return h ^ (uint32) tr->pt.fold[p < 0 ? tr->pt.npatterns : p];
}

static inline bool
pattern_equal(Trainer *tr, int64 a, int64 b)
{
	int64		af,
				at,
				bf,
				bt;

	pattern_span(tr, a, &af, &at);
	pattern_span(tr, b, &bf, &bt);
	return at - af == bt - bf &&
		tr->pt.fold[a < 0 ? tr->pt.npatterns : a] ==
		tr->pt.fold[b < 0 ? tr->pt.npatterns : b] &&
		memcmp(&tr->pt.cols[af], &tr->pt.cols[bf], (at - af) * sizeof(int32)) == 0 &&
		memcmp(&tr->pt.vals[af], &tr->pt.vals[bf], (at - af) * sizeof(float4)) == 0;
}

#define SH_PREFIX		patterns
#define SH_ELEMENT_TYPE PatternEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			pattern
#define SH_HASH_KEY(tb, k) pattern_hash((Trainer *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) pattern_equal((Trainer *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Encodes every lead as its sorted (column, value) pairs, numbers
 * standardised, and keeps each distinct pattern once per fold with its
 * count of leads and wins.  The candidate is written past the end of the
 * arena and either becomes a new pattern or is dropped for an equal one.
 */
static void
build_patterns(Trainer *tr)
{
	Patterns   *pt = &tr->pt;
	patterns_hash *index = patterns_create(tr->cxt, Max(tr->nrows / 4, 1024), tr);
	int64		cap_cols = 0,
				cap_vals = 0,
				cap_patterns = 0,
				cap_n = 0,
				cap_y = 0,
				cap_fold = 0,
				i;
	/* a lead has each token at most once, a number with its range */
	RawEntry   *row = palloc(sizeof(RawEntry) * 2 * Max(tr->ntokens, 1));

	pt->ncols = tr->ncols;
	pt->npatterns = 0;
	tr->row_pattern = MemoryContextAllocHuge(tr->cxt,
											 sizeof(int64) * Max(tr->nrows, 1));
	pt->start = grow(tr->cxt, pt->start, &cap_patterns, 2, sizeof(int64));
	pt->start[0] = 0;

	for (i = 0; i < tr->nrows; i++)
	{
		int64		from = tr->rows[i].raw_start;
		int64		to = i + 1 < tr->nrows ? tr->rows[i + 1].raw_start : tr->nraw;
		int64		len = 0,
					k,
					at;
		bool		found;
		PatternEntry *e;

		/* map tokens to columns; several rare levels may share "(other)" */
		for (k = from; k < to; k++)
		{
			Token	   *t = &tr->tokens[tr->raw[k].token];

			if (t->column < 0)
				continue;
			row[len].token = t->column;
			row[len].value = t->numeric ?
				(float4) ((token_value(t, tr->raw[k].value) - token_moments(t)->mean) /
						  moments_std(token_moments(t))) : 1.0f;
			len++;
			if (t->ncuts > 0)
			{
				int32		col = t->bin_column[bin_of_stored(t->bounds, t->ncuts,
															  tr->raw[k].value)];

				if (col >= 0)
				{
					row[len].token = col;
					row[len].value = 1.0f;
					len++;
				}
			}
		}
		sort_entries(row, len);

		/* write the candidate past the end */
		at = pt->start[pt->npatterns];
		pt->cols = grow(tr->cxt, pt->cols, &cap_cols, at + len, sizeof(int32));
		pt->vals = grow(tr->cxt, pt->vals, &cap_vals, at + len, sizeof(float4));
		pt->start = grow(tr->cxt, pt->start, &cap_patterns, pt->npatterns + 2,
						 sizeof(int64));
		pt->n = grow(tr->cxt, pt->n, &cap_n, pt->npatterns + 1, sizeof(double));
		pt->y = grow(tr->cxt, pt->y, &cap_y, pt->npatterns + 1, sizeof(double));
		pt->fold = grow(tr->cxt, pt->fold, &cap_fold, pt->npatterns + 1, sizeof(char));
		for (k = 0; k < len; k++)
		{
			pt->cols[at + k] = row[k].token;
			pt->vals[at + k] = row[k].value;
		}
		pt->n[pt->npatterns] = (double) len;	/* the candidate's length */
		pt->fold[pt->npatterns] = tr->rows[i].fold;

		e = patterns_insert(index, -1, &found);
		if (!found)
		{
			e->pattern = pt->npatterns++;
			pt->start[pt->npatterns] = at + len;
			pt->n[e->pattern] = 0;
			pt->y[e->pattern] = 0;
		}
		pt->n[e->pattern] += 1;
		pt->y[e->pattern] += tr->rows[i].won ? 1 : 0;
		tr->row_pattern[i] = e->pattern;
	}
	pfree(row);
}

/* ----------------------------------------------------------------
 * Lifetime uplift and priority bands
 * ----------------------------------------------------------------
 */

/*
 * Learns the lifetime uplift of each client segment: over the leads won in
 * the ltv_months before the last ltv_months of the window, the mean profit
 * their clients brought in the ltv_months after, shrunk towards zero for
 * small segments (as if ten more leads had brought nothing).  Returns the
 * number of leads it learned from.
 */
static int64
learn_ltv(Trainer *tr, TimestampTz until)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2] = {TimestampTzGetDatum(until),
	Int32GetDatum(tr->opt.ltv_months)};
	double	   *sum,
			   *count;
	uint64		i;
	int32		s;

	if (SPI_execute_with_args(
							  "SELECT c.kind, c.industry, c.core_industry,"
							  "       (SELECT coalesce(sum(f.won_profit), 0)"
							  "          FROM scoring.lead f"
							  "         WHERE f.client_id = l.client_id AND f.status = 'won'"
							  "           AND f.created_at > l.created_at"
							  "           AND f.created_at <= l.created_at + make_interval(months => $2))"
							  "  FROM scoring.lead l JOIN scoring.client c USING (client_id)"
							  " WHERE l.status = 'won'"
							  "   AND l.created_at >= $1 - make_interval(months => 2 * $2)"
							  "   AND l.created_at < $1 - make_interval(months => $2)",
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lifetime data");

	sum = palloc0(sizeof(double) * (tr->nsegments + SPI_processed + 1));
	count = palloc0(sizeof(double) * (tr->nsegments + SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LeadInput	lead;
		bool		isnull;
		Datum		d;
		double		future;

		memset(&lead, 0, sizeof(lead));
		lead.has_client = true;
		lead.client_kind = SPI_getvalue(tup, desc, 1);
		lead.client_industry = SPI_getvalue(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		lead.client_core = isnull ? -1 : DatumGetBool(d) ? 1 : 0;
		d = SPI_getbinval(tup, desc, 4, &isnull);
		if (isnull || !numeric_to_finite_double(DatumGetNumeric(d), &future))
			continue;
		s = segment_id(tr, &lead);
		sum[s] += future;
		count[s] += 1;
	}

	tr->ltv = palloc0(sizeof(double) * Max(tr->nsegments, 1));
	for (s = 0; s < tr->nsegments; s++)
		tr->ltv[s] = sum[s] / (count[s] + 10.0);
	return (int64) SPI_processed;
}

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Band thresholds from the model's expected profit on the training leads:
 * the top band_shares[0] of leads reach priority 1, the top band_shares[1]
 * priority 2 or better, and so on.  Returns false when no lead has a
 * budget to compute an expected profit from.
 */
static bool
compute_bands(Trainer *tr, const double *beta, double *bands)
{
	double	   *expected = palloc(sizeof(double) * Max(tr->nrows, 1));
	int64		n = 0,
				i;
	int			b;

	for (i = 0; i < tr->nrows; i++)
	{
		LeadRow    *r = &tr->rows[i];
		double		p;

		if (isnan(r->potential))
			continue;
		p = logistic(pattern_logit(&tr->pt, tr->row_pattern[i], beta));
		expected[n++] = p * (r->potential + (tr->ltv ? tr->ltv[r->segment] : 0));
	}
	if (n == 0)
		return false;
	qsort(expected, n, sizeof(double), double_cmp);
	for (b = 0; b < 4; b++)
	{
		int64		k = (int64) floor((1.0 - tr->opt.band_shares[b]) * n);

		bands[b] = round(expected[Min(k, n - 1)]);
	}
	pfree(expected);
	return true;
}

/* ----------------------------------------------------------------
 * Storing the model
 * ----------------------------------------------------------------
 */

/* Appends "key": number to a JSON object being built */
static void
json_number(StringInfo buf, bool *first, const char *key, double value)
{
	appendStringInfoString(buf, *first ? "" : ", ");
	escape_json(buf, key);
	appendStringInfo(buf, ": %.17g", value);
	*first = false;
}

/* The coefficients as {"name": weight} */
static char *
weights_json(Trainer *tr, const double *beta)
{
	StringInfoData buf;
	bool		first = true;
	int32		j;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (j = 1; j < tr->ncols; j++)
		json_number(&buf, &first, tr->column_names[j], beta[j]);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The numeric columns as {"name": {mean, std, min, max, log[, cuts]}} */
static char *
numeric_json(Trainer *tr)
{
	StringInfoData buf;
	bool		first = true;
	int32		j;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (j = 1; j < tr->ncols; j++)
	{
		Token	   *t = tr->column_token[j];
		const Moments *m;

		if (t == NULL)
			continue;
		m = token_moments(t);
		appendStringInfoString(&buf, first ? "" : ", ");
		escape_json(&buf, t->name);
		appendStringInfo(&buf,
						 ": {\"mean\": %.17g, \"std\": %.17g, \"min\": %.17g, \"max\": %.17g,"
						 " \"log\": %s",
						 m->mean, moments_std(m), m->min, m->max, t->log ? "true" : "false");
		if (t->ncuts > 0)
		{
			int			b;

			appendStringInfoString(&buf, ", \"cuts\": [");
			for (b = 0; b < t->ncuts; b++)
				appendStringInfo(&buf, "%s%s", b ? ", " : "", t->cut_texts[b]);
			appendStringInfoChar(&buf, ']');
		}
		appendStringInfoChar(&buf, '}');
		first = false;
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The uplift per segment as {"segment": uplift} */
static char *
ltv_json(Trainer *tr)
{
	StringInfoData buf;
	bool		first = true;
	int32		s;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (s = 0; tr->ltv && s < tr->nsegments; s++)
		if (tr->ltv[s] > 0)
			json_number(&buf, &first, tr->segments[s], round(tr->ltv[s] * 100) / 100);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* A JSON text as a jsonb datum */
static Datum
jsonb_datum(const char *text)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
}

/* Runs a statement that must succeed */
static void
run(const char *sql, int nargs, Oid *argtypes, Datum *args, int expect)
{
	if (SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0) != expect)
		elog(ERROR, "could not run \"%s\"", sql);
}

/*
 * Inserts the model row and, when asked, makes it the active one.  The
 * table lock serialises concurrent activations so that exactly one model
 * is active whatever the interleaving; readers are never blocked.
 */
static int32
store_model(Trainer *tr, TimestampTz since, TimestampTz until, Jsonb *options,
			const double *beta, const char *metrics)
{
	Oid			argtypes[11] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID,
		INT8OID, JSONBOID, FLOAT8OID, JSONBOID, JSONBOID, JSONBOID, JSONBOID};
	Datum		args[11];
	bool		isnull;

	if (tr->opt.activate)
	{
		run("LOCK TABLE scoring.model IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
			SPI_OK_UTILITY);
		run("UPDATE scoring.model SET active = false WHERE active", 0, NULL, NULL,
			SPI_OK_UPDATE);
	}

	args[0] = TimestampTzGetDatum(since);
	args[1] = TimestampTzGetDatum(until);
	args[2] = Int64GetDatum(tr->nrows);
	args[3] = Int64GetDatum(tr->nwon);
	args[4] = Int64GetDatum(tr->pt.npatterns);
	args[5] = options ? JsonbPGetDatum(options) : jsonb_datum("{}");
	args[6] = Float8GetDatum(beta[0]);
	args[7] = jsonb_datum(weights_json(tr, beta));
	args[8] = jsonb_datum(numeric_json(tr));
	args[9] = jsonb_datum(ltv_json(tr));
	args[10] = jsonb_datum(metrics);
	run(tr->opt.activate ?
		"INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,"
		" n_patterns, options, intercept, weights, numeric_features, ltv, metrics)"
		" VALUES (true, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING model_id" :
		"INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,"
		" n_patterns, options, intercept, weights, numeric_features, ltv, metrics)"
		" VALUES (false, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING model_id",
		11, argtypes, args, SPI_OK_INSERT_RETURNING);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/* Replaces the priority bands */
static void
store_bands(const double *bands)
{
	Oid			argtypes[4] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
	Datum		args[4];
	int			b;

	for (b = 0; b < 4; b++)
		args[b] = Float8GetDatum(bands[b]);
	/* concurrent trains replace the bands one after the other */
	run("LOCK TABLE scoring.priority_band IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
		SPI_OK_UTILITY);
	run("DELETE FROM scoring.priority_band", 0, NULL, NULL, SPI_OK_DELETE);
	run("INSERT INTO scoring.priority_band (priority, min_expected_profit)"
		" VALUES (1, $1), (2, $2), (3, $3), (4, $4)",
		4, argtypes, args, SPI_OK_INSERT);
}

/* Whether any priority band exists */
static bool
have_bands(void)
{
	run("SELECT 1 FROM scoring.priority_band LIMIT 1", 0, NULL, NULL, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/* ----------------------------------------------------------------
 * scoring.train(since, until, options)
 * ----------------------------------------------------------------
 */

/* Refuses data a model cannot be learned from; changes nothing */
static void
check_training_data(Trainer *tr, TimestampTz since, TimestampTz until)
{
	if (tr->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SCORING_TRAINING_DATA),
				 errmsg("no closed leads to train on"),
				 errdetail("No lead created in [%s, %s) is won or lost.",
						   pstrdup(timestamptz_to_str(since)),
						   pstrdup(timestamptz_to_str(until))),
				 errhint("Widen the window, or import last year's closed leads first.")));
	if (tr->nwon == 0 || tr->nwon == tr->nrows)
		ereport(ERROR,
				(errcode(ERRCODE_SCORING_TRAINING_DATA),
				 errmsg("training needs both won and lost leads"),
				 errdetail("All " INT64_FORMAT " closed leads in the window are %s.",
						   tr->nrows, tr->nwon ? "won" : "lost"),
				 errhint("Widen the window so that it holds both outcomes.")));
}

Datum
scoring_train(PG_FUNCTION_ARGS)
{
	TimestampTz since,
				until;
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Trainer    *tr;
	double	   *beta;
	double		bands[4];
	bool		bands_set = false;
	StringInfoData metrics;
	FitResult	fit;
	instr_time	start,
				elapsed;
	int64		ltv_leads = 0;
	int32		id;
	MemoryContext cxt,
				old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("train needs both since and until")));
	since = PG_GETARG_TIMESTAMPTZ(0);
	until = PG_GETARG_TIMESTAMPTZ(1);
	if (since >= until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("since must be before until")));

	INSTR_TIME_SET_CURRENT(start);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "scoring train",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	tr = palloc0(sizeof(Trainer));
	tr->cxt = cxt;
	parse_options(options, &tr->opt);
	tr->sink.category = train_category;
	tr->sink.number = train_number;
	tr->token_index = tokens_create(cxt, 1024, NULL);
	tr->segment_index = tokens_create(cxt, 64, NULL);
	initStringInfo(&tr->keybuf);
	initStringInfo(&tr->fieldbuf);
	initStringInfo(&tr->levelbuf);

	SPI_connect();
	MemoryContextSwitchTo(cxt);
	read_training_data(tr, since, until, scoring_config());
	check_training_data(tr, since, until);
	if (tr->opt.ltv)
		ltv_leads = learn_ltv(tr, until);
	choose_bins(tr);
	assign_columns(tr);
	build_patterns(tr);

	/* fit on the training fold and measure on the holdout ... */
	beta = palloc0(sizeof(double) * tr->ncols);
	beta[0] = log((tr->nwon + 0.5) / (tr->nrows - tr->nwon + 0.5));
	fit_warm_start(&tr->pt, tr->opt.holdout > 0 ? 0 : -1, tr->opt.l2,
				   tr->opt.max_iter, beta);
	initStringInfo(&metrics);
	appendStringInfoString(&metrics, "{\"holdout\": ");
	if (tr->opt.holdout > 0)
	{
		fit_logistic(&tr->pt, 0, tr->opt.l2, tr->opt.max_iter, beta);
		fold_metrics(&tr->pt, 1, beta, &metrics);
	}
	else
		appendStringInfoString(&metrics, "null");

	/* ... then on everything, for the model that is kept */
	fit = fit_logistic(&tr->pt, -1, tr->opt.l2, tr->opt.max_iter, beta);
	appendStringInfoString(&metrics, ", \"train\": ");
	fold_metrics(&tr->pt, -1, beta, &metrics);

	if (tr->opt.set_bands == 1 ||
		(tr->opt.set_bands == -1 && tr->opt.activate && !have_bands()))
		bands_set = compute_bands(tr, beta, bands);

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	appendStringInfo(&metrics,
					 ", \"fit\": {\"iterations\": %d, \"converged\": %s, \"columns\": %d,"
					 " \"patterns\": " INT64_FORMAT ", \"l2\": %g, \"seconds\": %.3f},"
					 " \"ltv\": {\"leads\": " INT64_FORMAT ", \"segments\": %d},"
					 " \"bands_set\": %s}",
					 fit.iterations, fit.converged ? "true" : "false", tr->ncols,
					 tr->pt.npatterns, tr->opt.l2, INSTR_TIME_GET_DOUBLE(elapsed),
					 ltv_leads, tr->nsegments, bands_set ? "true" : "false");

	id = store_model(tr, since, until, options, beta, metrics.data);
	if (bands_set)
		store_bands(bands);
	SPI_finish();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(id);
}
