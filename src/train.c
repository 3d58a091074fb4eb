/*-------------------------------------------------------------------------
 *
 * train.c
 *		scoring.train(): fit a model on closed leads and activate it.
 *
 * One pass reads every lead closed as won or lost in the window, with its
 * client and the client's history, and turns it into tokens ("shop=web03",
 * the number "budget", ...) through the same features_emit_fixed() that
 * scores leads; the second half of the table is read apart, by a parallel
 * worker when one can be had, and merged (train_parallel.c).  Rare levels
 * are then pooled into "(other)", numbers standardised and cut into
 * ranges, and identical rows compressed into weighted patterns
 * (train_columns.c), on which fit.c runs the regression, the worker
 * computing on the patterns of its half: first on the training fold, to
 * measure it on the holdout fold, then on all leads for the model that is
 * stored.
 * The same call learns the lifetime uplift per client segment and, on
 * request or when there are none yet, the priority bands (train_store.c).
 *
 * This file holds the options, the pass over the leads (and the merge of
 * a half read apart) and the entry point.
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
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "portability/instr_time.h"
#include "storage/itemptr.h"
#include "storage/off.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bins.h"
#include "train.h"

PG_FUNCTION_INFO_V1(scoring_train);

/*
 * Grows an array of elements of size sz, kept in cxt, to hold at least
 * need of them.
 */
void *
train_grow(MemoryContext cxt, void *array, int64 *cap, int64 need, Size sz)
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
			 errhint("Options are l2, min_count, bins, holdout, seed, max_iter, warm_sample, ltv, ltv_months, set_bands, band_shares and activate.")));
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
	opt->warm_sample = 100000;
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
		else if (strcmp(key, "warm_sample") == 0)
			opt->warm_sample = (int) option_number(key, &v, 0, 1e9);
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

		tr->tokens = train_grow(tr->cxt, tr->tokens, &cap, tr->ntokens + 1, sizeof(Token));
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
	tr->raw = train_grow(tr->cxt, tr->raw, &tr->raw_cap, tr->nraw + 1, sizeof(RawEntry));
	tr->raw[tr->nraw].token = (int32) (t - tr->tokens);
	tr->raw[tr->nraw].value = (float4) value;
	tr->nraw++;
	t->count++;
}

/* The token "field=level", field being flen bytes long and level len */
static Token *
intern_level(Trainer *tr, const char *field, int flen, const char *level,
			 int len)
{
	/* without a format: this runs for every new level of every lead */
	resetStringInfo(&tr->keybuf);
	appendBinaryStringInfo(&tr->keybuf, field, flen);
	appendStringInfoChar(&tr->keybuf, '=');
	appendBinaryStringInfo(&tr->keybuf, level, len);
	return intern(tr, tr->keybuf.data, tr->keybuf.len, field,
				  tr->keybuf.data + flen + 1);
}

/*
 * Adds a field to fields and to index (keyed by key, keylen bytes); name
 * is the sink's name for it.
 */
static Field *
add_field(Trainer *tr, tokens_hash *index, const char *key, int keylen,
		  const char *name, int namelen)
{
	int64		cap = tr->fields_cap;
	bool		found;
	TokenEntry *e;
	Field	   *f;

	tr->fields = train_grow(tr->cxt, tr->fields, &cap, tr->nfields + 1,
							sizeof(Field));
	tr->fields_cap = (int32) cap;
	f = &tr->fields[tr->nfields];
	memset(f, 0, sizeof(Field));
	f->key = MemoryContextAlloc(tr->cxt, keylen + 1);
	memcpy(f->key, key, keylen);
	f->key[keylen] = '\0';
	f->keylen = keylen;
	f->name = index == tr->fixed_index ? f->key :
		MemoryContextStrdup(tr->cxt, name);
	f->namelen = namelen;
	f->number = -1;
	f->next = -1;
	e = tokens_insert(index, f->key, &found);
	Assert(!found);
	e->token = tr->nfields++;
	return f;
}

/* The Field of a free feature's key, added when new */
static Field *
free_field(Trainer *tr, const char *key, int keylen)
{
	TokenEntry *e;

	resetStringInfo(&tr->keybuf);
	appendBinaryStringInfo(&tr->keybuf, key, keylen);
	e = tokens_lookup(tr->free_index, tr->keybuf.data);
	if (e != NULL)
		return &tr->fields[e->token];
	free_field_name(&tr->fieldbuf, key, keylen);
	return add_field(tr, tr->free_index, key, keylen, tr->fieldbuf.data,
					 tr->fieldbuf.len);
}

/*
 * Sink: names a free feature's key.  Leads carry much the same keys, and
 * jsonb keeps an object's keys sorted, so the key that followed the
 * previous one in the last lead is compared first, then the one after it
 * (one key absent), and the index is looked up only when neither matches.
 */
static const char *
train_free_field(FeatureSink *sink, const char *key, int keylen)
{
	Trainer    *tr = (Trainer *) sink;
	int32		guess = tr->free_previous < 0 ? tr->free_first :
		tr->fields[tr->free_previous].next;
	Field	   *f = NULL;
	int			tries;

	for (tries = 0; tries < 2 && guess >= 0; tries++)
	{
		Field	   *g = &tr->fields[guess];

		if (g->keylen == keylen && same_bytes(g->key, key, keylen))
		{
			f = g;
			break;
		}
		guess = g->next;
	}
	if (f == NULL)
		f = free_field(tr, key, keylen);
	if (tr->free_previous < 0)
		tr->free_first = (int32) (f - tr->fields);
	else
		tr->fields[tr->free_previous].next = (int32) (f - tr->fields);
	tr->free_previous = (int32) (f - tr->fields);
	tr->free_current = f;
	return f->name;
}

/*
 * The Field of a fixed field.  features_emit_fixed() emits each of them
 * once per lead, in the same order and by the same constant name, so the
 * one at the same place in the last lead is compared first: by the
 * pointer it was passed by, then by name.
 */
static Field *
fixed_field(Trainer *tr, const char *name)
{
	int32		place = tr->fixed_place++;
	TokenEntry *e;
	Field	   *f;

	if (place < FIXED_PLACES && tr->fixed_at[place] >= 0)
	{
		f = &tr->fields[tr->fixed_at[place]];
		if (tr->fixed_named[place] == name || strcmp(f->name, name) == 0)
			return f;
	}
	e = tokens_lookup(tr->fixed_index, name);
	f = e != NULL ? &tr->fields[e->token] :
		add_field(tr, tr->fixed_index, name, strlen(name), name, strlen(name));
	if (place < FIXED_PLACES)
	{
		tr->fixed_at[place] = (int32) (f - tr->fields);
		tr->fixed_named[place] = name;
	}
	return f;
}

/* The Field the sink is given a value of */
static inline Field *
sink_field(Trainer *tr, const char *name)
{
	Field	   *f = tr->free_current;

	return f != NULL && name == f->name ? f : fixed_field(tr, name);
}

/* Adds a level's token to a field's index of levels */
static void
field_add_level(Field *f, LevelKey level, int32 token)
{
	bool		found;
	LevelEntry *e = levels_insert(f->levels, level, &found);

	e->token = token;
}

/*
 * The token of a field's level: the last one's again, or through the
 * field's own index of levels.  The index is made when a second level
 * comes: a field with one level (a number's "(present)", a key that one
 * lead alone has) needs none.
 */
static Token *
field_level(Trainer *tr, Field *f, const char *level, int len)
{
	LevelKey	key = {level, len};
	LevelEntry *e = NULL;

	if (f->last_level.str != NULL && f->last_level.len == len &&
		same_bytes(f->last_level.str, level, len))
		return &tr->tokens[f->last_token];
	if (f->last_level.str != NULL && f->levels == NULL)
	{
		f->levels = levels_create(tr->cxt, 16, NULL);
		field_add_level(f, f->last_level, f->last_token);
	}
	if (f->levels != NULL)
		e = levels_lookup(f->levels, key);
	if (e != NULL)
	{
		f->last_level = e->level;
		f->last_token = e->token;
	}
	else
	{
		Token	   *t = intern_level(tr, f->name, f->namelen, level, len);

		/* the level in the token's lasting name */
		f->last_level.str = t->name + f->namelen + 1;
		f->last_level.len = len;
		f->last_token = (int32) (t - tr->tokens);
		if (f->levels != NULL)
			field_add_level(f, f->last_level, f->last_token);
	}
	return &tr->tokens[f->last_token];
}

/* Sink: a category level */
static void
train_category(FeatureSink *sink, const char *field, const char *level,
			   int len)
{
	Trainer    *tr = (Trainer *) sink;

	if (level == NULL)
	{
		level = LEVEL_MISSING;
		len = strlen(LEVEL_MISSING);
	}
	add_entry(tr, field_level(tr, sink_field(tr, field), level, len), 1.0);
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

/*
 * Adds the moments b of other values to a (the pairwise formulas of Chan
 * et al. and Pebay): what moments_add() of all of them would hold, up to
 * rounding.
 */
static void
moments_combine(Moments *a, const Moments *b)
{
	double		na = (double) a->n,
				nb = (double) b->n,
				n = na + nb,
				delta = b->mean - a->mean;

	if (b->n == 0)
		return;
	if (a->n == 0)
	{
		*a = *b;
		return;
	}
	a->m3 += b->m3 + delta * delta * delta * na * nb * (na - nb) / (n * n) +
		3 * delta * (na * b->m2 - nb * a->m2) / n;
	a->m2 += b->m2 + delta * delta * na * nb / n;
	a->mean += delta * nb / n;
	a->n += b->n;
	a->min = Min(a->min, b->min);
	a->max = Max(a->max, b->max);
}

/* The sample standard deviation */
double
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
	Field	   *f = sink_field(tr, field);
	double		x = feature_transform(value);
	Token	   *t;

	if (f->number < 0)
		f->number = (int32) (intern(tr, f->name, f->namelen, f->name, NULL) - tr->tokens);
	t = &tr->tokens[f->number];

	add_entry(tr, t, x);
	moments_add(&t->logged, x);
	moments_add(&t->raw, value);
}

/*
 * Whether a number is better taken as its log: money, counts and turnovers
 * are non-negative and skewed to the right (skewness over 1), and their
 * logs are not; rates, scores and indices are taken as they are.
 */
bool
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
const Moments *
token_moments(const Token *t)
{
	return t->log ? &t->logged : &t->raw;
}

/* The id of a segment, adding it when new */
static int32
segment_named(Trainer *tr, const char *seg)
{
	bool		found;
	TokenEntry *e = tokens_insert(tr->segment_index, seg, &found);

	if (!found)
	{
		int64		cap = tr->segments_cap;

		tr->segments = train_grow(tr->cxt, tr->segments, &cap, tr->nsegments + 1, sizeof(char *));
		tr->segments_cap = (int32) cap;
		tr->segments[tr->nsegments] = MemoryContextStrdup(tr->cxt, seg);
		e->name = tr->segments[tr->nsegments];
		e->token = tr->nsegments++;
	}
	return e->token;
}

/* The segment id of a lead, adding the segment when new */
int32
segment_id(Trainer *tr, const LeadInput *lead)
{
	return segment_named(tr, client_segment(lead));
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

/*
 * A number drawn from lead_id alone, which decides whether the lead's
 * numbers are in the sample their ranges are cut from: the same leads
 * give the same ranges in whatever order they are read.  Its own seed
 * keeps it apart from the holdout's draw.
 */
static uint16
lead_draw(int64 lead_id)
{
	return (uint16) hash_bytes_extended((const unsigned char *) &lead_id,
										sizeof(lead_id),
										UINT64CONST(0x5C0121B15A3B1E5));
}

/*
 * The potential profit of a training lead, on which the lifetime uplift
 * and the bands are learned: budget x the brand's margin (the default one
 * for an unknown brand), NaN without a budget up to max_budget or when it
 * comes out negative.
 */
static double
lead_potential(Trainer *tr, const LeadInput *lead)
{
	double		budget,
				margin;

	if (lead->budget == NULL ||
		!numeric_to_finite_double(lead->budget, &budget) ||
		!(budget <= tr->max_budget))
		return NAN;
	if (!brand_margin(tr->config, lead->brand, NULL, &margin))
		margin = tr->default_margin;
	budget *= margin;
	return budget >= 0 && isfinite(budget) ? budget : NAN;
}

/* A text column of a deformed row as a C string, NULL when null */
static inline char *
text_column(Datum *v, bool *null, int col)
{
	return null[col] ? NULL : TextDatumGetCString(v[col]);
}

/* ----------------------------------------------------------------
 * Streaming a query's rows
 * ----------------------------------------------------------------
 */

/* What receives each row of a query, as its columns */
typedef void (*RowFunc) (void *arg, Datum *values, bool *isnull);

/* Rows between resets of the rows' short-lived context and interrupt checks */
#define ROW_BATCH	10000

#if PG_VERSION_NUM >= 140000

/*
 * Hands the rows straight from the executor to a RowFunc, so that none is
 * copied into a tuple table first (for a million leads with their
 * features, that copy was a twentieth of train()).
 */
typedef struct RowReceiver
{
	DestReceiver pub;
	RowFunc		row;
	void	   *arg;
	MemoryContext batch;		/* reset every ROW_BATCH rows */
	int			inbatch;
} RowReceiver;

static bool
row_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RowReceiver *rcv = (RowReceiver *) self;
	MemoryContext old;

	if (rcv->inbatch == ROW_BATCH)
	{
		MemoryContextReset(rcv->batch);
		rcv->inbatch = 0;
		CHECK_FOR_INTERRUPTS();
	}
	rcv->inbatch++;
	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(rcv->batch);
	rcv->row(rcv->arg, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	return true;
}

static void
row_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
row_nothing(DestReceiver *self)
{
}

/*
 * Runs a read-only query with nargs parameters and hands each row to
 * row(arg, ...), in a short-lived context.
 */
static void
for_each_row(const char *sql, int nargs, const Oid *types, const Datum *values,
			 RowFunc row, void *arg)
{
	ParamListInfo params = makeParamList(nargs);
	RowReceiver rcv;
	SPIExecuteOptions options;
	int			i;

	for (i = 0; i < nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	memset(&rcv, 0, sizeof(rcv));
	rcv.pub.receiveSlot = row_receive;
	rcv.pub.rStartup = row_startup;
	rcv.pub.rShutdown = row_nothing;
	rcv.pub.rDestroy = row_nothing;
	rcv.pub.mydest = DestNone;
	rcv.row = row;
	rcv.arg = arg;
	rcv.batch = AllocSetContextCreate(CurrentMemoryContext, "scoring rows",
									  ALLOCSET_DEFAULT_SIZES);

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = &rcv.pub;
	/* SPI_OK_UTILITY, not SELECT, when the rows go to a DestNone receiver */
	if (SPI_execute_extended(sql, &options) < 0)
		elog(ERROR, "SPI_execute_extended failed: %s", sql);
	MemoryContextDelete(rcv.batch);
}

#else							/* PostgreSQL 13: through a cursor */

static void
for_each_row(const char *sql, int nargs, const Oid *types, const Datum *values,
			 RowFunc row, void *arg)
{
	MemoryContext keep = CurrentMemoryContext;
	MemoryContext batch = AllocSetContextCreate(keep, "scoring rows",
												ALLOCSET_DEFAULT_SIZES);
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL, sql, nargs, (Oid *) types,
									   (Datum *) values, NULL, true,
									   CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		TupleDesc	desc;
		Datum	   *v;
		bool	   *null;
		uint64		i;

		SPI_cursor_fetch(portal, true, ROW_BATCH);
		if (SPI_processed == 0)
			break;
		MemoryContextSwitchTo(batch);
		desc = SPI_tuptable->tupdesc;
		v = palloc(sizeof(Datum) * desc->natts);
		null = palloc(sizeof(bool) * desc->natts);
		for (i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], desc, v, null);
			row(arg, v, null);
		}
		MemoryContextSwitchTo(keep);
		MemoryContextReset(batch);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch);
}

#endif

/* ----------------------------------------------------------------
 * The client history of the training leads
 * ----------------------------------------------------------------
 */

/* The pass of read_histories() over one client's leads after another */
typedef struct HistoryWalk
{
	Histories  *histories;
	TimestampTz since;
	Closings	pending;		/* the client's wins not yet closed */
	int64		client;
	bool		have_client;
	int64		first;			/* the client's first moment kept */
	TimestampTz at;				/* the moment of the last lead */
	int64		leads;			/* the client's leads before it */
	int64		wins;			/* and its wins closed by then */
} HistoryWalk;

/* Indexes the moments kept of the client the walk leaves */
static void
history_client_done(HistoryWalk *w)
{
	Histories  *h = w->histories;
	HistoryClient *c;
	bool		found;

	if (!w->have_client || h->nmoments == w->first)
		return;
	c = history_clients_insert(h->clients, w->client, &found);
	c->first = w->first;
	c->nmoments = h->nmoments - w->first;
	c->cursor = w->first;
	c->kind = c->industry = c->okved = c->segment = NULL;
	c->segment_of = NULL;
	c->core = -1;
	c->turnover = NULL;
}

/* One lead: client_id, created_at, closed_at when won */
static void
history_row(void *arg, Datum *v, bool *null)
{
	HistoryWalk *w = (HistoryWalk *) arg;
	Histories  *h = w->histories;
	int64		client = DatumGetInt64(v[0]);
	TimestampTz t = DatumGetTimestampTz(v[1]);

	if (!w->have_client || client != w->client)
	{
		history_client_done(w);
		w->client = client;
		w->have_client = true;
		w->first = h->nmoments;
		w->leads = w->wins = 0;
		w->pending.n = 0;
	}
	if (w->leads == 0 || t != w->at)
	{
		w->at = t;
		w->wins += closings_settle(&w->pending, t);
		if (t >= w->since)
		{
			HistoryMoment *m;

			h->moments = train_grow(h->cxt, h->moments, &h->cap, h->nmoments + 1,
									sizeof(HistoryMoment));
			m = &h->moments[h->nmoments++];
			m->at = t;
			m->leads = w->leads;
			m->wins = w->wins;
		}
	}
	w->leads++;
	if (!null[2])
		closings_push(&w->pending, DatumGetTimestampTz(v[2]));
}

/* One client: its row, kept in the histories' context when it has leads */
static void
client_row(void *arg, Datum *v, bool *null)
{
	Histories  *h = ((HistoryWalk *) arg)->histories;
	HistoryClient *c = history_clients_lookup(h->clients, DatumGetInt64(v[0]));
	MemoryContext old;

	if (c == NULL)
		return;
	old = MemoryContextSwitchTo(h->cxt);
	c->kind = text_column(v, null, 1);
	c->industry = text_column(v, null, 2);
	c->okved = text_column(v, null, 3);
	c->core = null[4] ? -1 : DatumGetBool(v[4]) ? 1 : 0;
	c->turnover = null[5] ? NULL : DatumGetNumericCopy(v[5]);
	MemoryContextSwitchTo(old);
}

/*
 * The history of every client at every moment of [since, until) that has
 * a lead: the client's leads created before that moment, and those of
 * them won and closed by then, exactly what the trigger's walk counts
 * (src/client.c).  One pass over lead_client_history_idx in (client,
 * created_at) order: at each new moment the wins closed by then are
 * taken from the heap of closing moments (closings.c), the moment's
 * history is kept, and its leads join the count.  Linear in the leads
 * (times log of the wins pending), where a lookup per lead would walk
 * each client's history once per lead.  The moments come in order, so
 * they are kept in an array, found by client (history_at).  Then the rows
 * of those clients, which the leads take their client's attributes from
 * (a join would probe a hash table of clients for every lead).
 */
Histories *
read_histories(MemoryContext cxt, TimestampTz since, TimestampTz until)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(until)};
	HistoryWalk w;

	memset(&w, 0, sizeof(w));
	w.histories = MemoryContextAllocZero(cxt, sizeof(Histories));
	w.histories->cxt = cxt;
	w.histories->clients = history_clients_create(cxt, 1024, NULL);
	w.since = since;
	w.pending.cxt = CurrentMemoryContext;
	for_each_row("SELECT client_id, created_at,"
				 "       CASE WHEN status = 'won' THEN closed_at END"
				 "  FROM scoring.lead"
				 " WHERE client_id IS NOT NULL AND created_at < $1"
				 " ORDER BY client_id, created_at",
				 1, argtypes, args, history_row, &w);
	history_client_done(&w);
	if (w.pending.v != NULL)
		pfree(w.pending.v);
	for_each_row("SELECT client_id, kind, industry, okved, core_industry,"
				 "       annual_turnover"
				 "  FROM scoring.client",
				 0, NULL, NULL, client_row, &w);
	return w.histories;
}

/* Frees what read_histories() made */
void
free_histories(Histories *h)
{
	history_clients_destroy(h->clients);
	if (h->moments != NULL)
		pfree(h->moments);
	pfree(h);
}

/* The first of moments lo..hi-1 at or after at; hi when none is */
static inline int64
moment_from(const HistoryMoment *moments, int64 lo, int64 hi, TimestampTz at)
{
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (moments[mid].at < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Client c's history at the moment at, NULL when it has no lead then.
 * A table keeps its leads much in the order they came, so the search
 * starts where the client's last lookup ended and gallops forward.
 */
static const HistoryMoment *
history_at(Histories *h, HistoryClient *c, TimestampTz at)
{
	int64		end = c->first + c->nmoments,
				i;

	i = c->cursor;
	if (h->moments[i].at > at)
		i = moment_from(h->moments, c->first, i, at);
	else if (h->moments[i].at < at)
	{
		int64		lo = i + 1,
					hi,
					step = 1;

		/* moments[lo - 1] is before at */
		for (;;)
		{
			hi = Min(lo + step, end);
			if (hi == end || h->moments[hi - 1].at >= at)
				break;
			lo = hi;
			step *= 2;
		}
		i = moment_from(h->moments, lo, hi, at);
	}
	if (i == end || h->moments[i].at != at)
		return NULL;
	c->cursor = i;
	return &h->moments[i];
}

/*
 * Takes one training lead from the columns of a result row into the
 * trainer.  Runs in a short-lived context; what lasts goes to tr->cxt.
 */
static void
read_training_row(void *arg, Datum *v, bool *null)
{
	Trainer    *tr = (Trainer *) arg;
	LeadInput	lead;
	int64		i = tr->nrows;
	LeadRow    *r;
	HistoryClient *c = NULL;

	memset(&lead, 0, sizeof(lead));
	lead.lead_id = DatumGetInt64(v[0]);
	lead.shop = text_column(v, null, 1);
	lead.channel = text_column(v, null, 2);
	lead.category = text_column(v, null, 3);
	lead.brand = text_column(v, null, 4);
	lead.budget = null[5] ? NULL : DatumGetNumeric(v[5]);
	lead.features = null[6] ? NULL : DatumGetJsonbP(v[6]);
	lead.client_core = -1;
	if (!null[7])
		c = history_clients_lookup(tr->histories->clients, DatumGetInt64(v[7]));
	if (c != NULL)
	{
		const HistoryMoment *h = history_at(tr->histories, c,
											DatumGetTimestampTz(v[8]));

		lead.client_kind = c->kind;
		lead.client_industry = c->industry;
		lead.client_okved = c->okved;
		lead.client_core = c->core;
		lead.client_turnover = c->turnover;
		if (h != NULL)
		{
			lead.prior_leads = h->leads;
			lead.prior_wins = h->wins;
		}
	}
	lead.has_client = lead.client_kind != NULL;

	tr->rows = train_grow(tr->cxt, tr->rows, &tr->rows_cap, i + 1, sizeof(LeadRow));
	r = &tr->rows[i];
	r->raw_start = tr->nraw;
	r->won = DatumGetBool(v[9]);
	r->fold = in_holdout(&tr->opt, lead.lead_id) ? 1 : 0;
	r->draw = lead_draw(lead.lead_id);
	r->potential = lead_potential(tr, &lead);
	/* a client's segment is the same for all its leads: named once */
	if (c != NULL && c->segment_of != tr)
	{
		if (c->segment == NULL)
			c->segment = MemoryContextStrdup(tr->histories->cxt,
											 client_segment(&lead));
		c->segment_id = segment_named(tr, c->segment);
		c->segment_of = tr;
	}
	r->segment = c != NULL ? c->segment_id : segment_id(tr, &lead);
	tr->nwon += r->won;

	tr->fixed_place = 0;
	features_emit_fixed(&lead, &tr->sink);
	tr->free_previous = -1;
	features_emit_all_free(lead.features, &tr->sink, &tr->fieldbuf);
	tr->free_current = NULL;
	tr->nrows++;
}

/*
 * The training query: its columns are read by read_training_row().  $3
 * and $4 bound the ctid, for the part of the table it reads (a TID range
 * scan from PostgreSQL 14 on, a filter before).
 */
#define TRAINING_QUERY \
	"SELECT lead_id, shop, channel, category, brand, budget, features," \
	"       client_id, created_at, status = 'won'" \
	"  FROM scoring.lead" \
	" WHERE status IN ('won', 'lost')" \
	"   AND created_at >= $1 AND created_at < $2" \
	"   AND ctid >= $3 AND ctid <= $4"

/* Takes what a lead's potential profit needs from the configuration */
void
trainer_set_config(Trainer *tr, ScoringConfig *config)
{
	tr->config = config;
	if (config->default_margin == NULL ||
		!numeric_to_finite_double(config->default_margin, &tr->default_margin))
		tr->default_margin = NAN;
	if (config->max_budget == NULL)
		tr->max_budget = NAN;
	else if (!numeric_to_finite_double(config->max_budget, &tr->max_budget))
		tr->max_budget = INFINITY;	/* positive (checked when set), past a double */
}

/*
 * Reads every lead closed as won or lost created in [since, until) and
 * stored in blocks first to last of scoring.lead, with its client and its
 * history (tr->histories, from read_histories()), in one pass in the
 * order they are stored.  The caller has turned synchronized and parallel
 * scans off (train_parallel.c).
 */
void
read_training_part(Trainer *tr, TimestampTz since, TimestampTz until,
				   BlockNumber first, BlockNumber last)
{
	Oid			argtypes[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIDOID, TIDOID};
	ItemPointerData lo,
				hi;
	Datum		args[4];

	ItemPointerSet(&lo, first, 0);
	ItemPointerSet(&hi, last, MaxOffsetNumber);
	args[0] = TimestampTzGetDatum(since);
	args[1] = TimestampTzGetDatum(until);
	args[2] = PointerGetDatum(&lo);
	args[3] = PointerGetDatum(&hi);
	for_each_row(TRAINING_QUERY, 4, argtypes, args, read_training_row, tr);
}

/* ----------------------------------------------------------------
 * Taking in what another trainer read (train_parallel.c)
 * ----------------------------------------------------------------
 */

/*
 * Adds n tokens another trainer read, with their counts and moments, and
 * sets map[i] to where tokens[i] is among this trainer's tokens.
 */
void
merge_tokens(Trainer *tr, const Token *tokens, int32 n, int32 *map)
{
	int32		i;

	for (i = 0; i < n; i++)
	{
		const Token *o = &tokens[i];
		const char *level = o->numeric ? NULL : o->name + strlen(o->field) + 1;
		Token	   *t = intern(tr, o->name, strlen(o->name), o->field, level);

		t->count += o->count;
		moments_combine(&t->logged, &o->logged);
		moments_combine(&t->raw, &o->raw);
		map[i] = (int32) (t - tr->tokens);
	}
}

/* Adds segments another trainer met; sets map[i] to where names[i] is here */
void
merge_segments(Trainer *tr, char *const *names, int32 n, int32 *map)
{
	int32		i;

	for (i = 0; i < n; i++)
		map[i] = segment_named(tr, names[i]);
}

/*
 * Appends leads another trainer read: rows whose raw_start count from the
 * end of the entries here (where theirs are appended, if they are) and
 * whose segments are mapped through segmap.
 */
void
append_rows(Trainer *tr, const LeadRow *rows, int64 n, const int32 *segmap)
{
	int64		i;

	tr->rows = train_grow(tr->cxt, tr->rows, &tr->rows_cap, tr->nrows + n,
						  sizeof(LeadRow));
	for (i = 0; i < n; i++)
	{
		LeadRow    *r = &tr->rows[tr->nrows + i];

		*r = rows[i];
		r->raw_start += tr->nraw;
		r->segment = segmap[r->segment];
		tr->nwon += r->won;
	}
	tr->nrows += n;
}

/* Appends the raw entries of those leads, their tokens mapped by tokmap */
void
append_raw(Trainer *tr, const RawEntry *raw, int64 n, const int32 *tokmap)
{
	int64		i;

	tr->raw = train_grow(tr->cxt, tr->raw, &tr->raw_cap, tr->nraw + n,
						 sizeof(RawEntry));
	for (i = 0; i < n; i++)
	{
		tr->raw[tr->nraw + i].token = tokmap[raw[i].token];
		tr->raw[tr->nraw + i].value = raw[i].value;
	}
	tr->nraw += n;
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

/* A trainer with its options, in a context of its own under the current one */
Trainer *
trainer_create(Jsonb *options)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "scoring train",
											  ALLOCSET_DEFAULT_SIZES);
	Trainer    *tr = MemoryContextAllocZero(cxt, sizeof(Trainer));
	MemoryContext old = MemoryContextSwitchTo(cxt);

	tr->cxt = cxt;
	parse_options(options, &tr->opt);
	tr->sink.category = train_category;
	tr->sink.number = train_number;
	tr->sink.free_field = train_free_field;
	tr->token_index = tokens_create(cxt, 1024, NULL);
	tr->free_index = tokens_create(cxt, 64, NULL);
	tr->fixed_index = tokens_create(cxt, 16, NULL);
	tr->free_first = -1;
	memset(tr->fixed_at, -1, sizeof(tr->fixed_at));
	tr->segment_index = tokens_create(cxt, 64, NULL);
	initStringInfo(&tr->keybuf);
	initStringInfo(&tr->fieldbuf);
	MemoryContextSwitchTo(old);
	return tr;
}

/*
 * Fits the coefficients into beta: first on the training fold (from the
 * warm start's coefficients and factored Hessian), measured on the holdout
 * fold, then on all leads for the model that is kept (it goes on from the
 * first fit's).  The first is only measured, so it stops at the looser
 * tolerance (fit.c).  The metrics of both go to metrics, the size of the
 * warm start's sample to *warm; returns the fit that is kept.
 */
static FitResult
fit_and_measure(Trainer *tr, double *beta, StringInfo metrics, int64 *warm)
{
	FitCarry	carry = {NULL, 0};
	FitResult	fit;

	beta[0] = log((tr->nwon + 0.5) / (tr->nrows - tr->nwon + 0.5));
	*warm = fit_warm_start(&tr->pt, tr->opt.holdout > 0 ? 0 : -1, tr->opt.l2,
						   tr->opt.max_iter, tr->opt.warm_sample, beta, &carry);
	appendStringInfoString(metrics, "{\"holdout\": ");
	if (tr->opt.holdout > 0)
	{
		fit_logistic(&tr->pt, 0, tr->opt.l2, tr->opt.max_iter, FIT_TO_MEASURE,
					 beta, &carry);
		fold_metrics(&tr->pt, 1, beta, metrics);
	}
	else
		appendStringInfoString(metrics, "null");

	fit = fit_logistic(&tr->pt, -1, tr->opt.l2, tr->opt.max_iter, FIT_TO_KEEP,
					   beta, &carry);
	appendStringInfoString(metrics, ", \"train\": ");
	fold_metrics(&tr->pt, -1, beta, metrics);
	return fit;
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
	bool		want_bands,
				bands_set = false;
	StringInfoData metrics;
	FitResult	fit;
	instr_time	start,
				elapsed;
	int64		ltv_leads = 0,
				warm;
	int32		id;
	MemoryContext old;

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

	check_store_allowed();
	INSTR_TIME_SET_CURRENT(start);
	tr = trainer_create(options);
	old = MemoryContextSwitchTo(tr->cxt);

	/* SPI_connect() switches to its own context; SPI_finish() back here */
	SPI_connect();
	MemoryContextSwitchTo(tr->cxt);
	/* asked first: no command may start in the parallel section */
	want_bands = tr->opt.set_bands == 1 ||
		(tr->opt.set_bands == -1 && tr->opt.activate && !have_bands());
	read_training_data(tr, since, until, scoring_config());
	check_training_data(tr, since, until);
	if (tr->opt.ltv)
		ltv_leads = learn_ltv(tr, until);
	choose_bins(tr);
	assign_columns(tr);
	build_patterns(tr);
	use_helper(tr);

	beta = palloc0(sizeof(double) * tr->ncols);
	initStringInfo(&metrics);
	fit = fit_and_measure(tr, beta, &metrics, &warm);
	if (want_bands)
		bands_set = compute_bands(tr, beta, bands);
	end_parallel(tr);

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	appendStringInfo(&metrics,
					 ", \"fit\": {\"iterations\": %d, \"hessians\": %d,"
					 " \"converged\": %s, \"columns\": %d,"
					 " \"patterns\": " INT64_FORMAT ", \"warm\": " INT64_FORMAT ","
					 " \"l2\": %g, \"workers\": %d, \"seconds\": %.3f},"
					 " \"ltv\": {\"leads\": " INT64_FORMAT ", \"segments\": %d},"
					 " \"bands_set\": %s}",
					 fit.iterations, fit.hessians,
					 fit.converged ? "true" : "false", tr->ncols,
					 tr->pt.npatterns, warm, tr->opt.l2, tr->workers,
					 INSTR_TIME_GET_DOUBLE(elapsed),
					 ltv_leads, tr->nsegments, bands_set ? "true" : "false");

	id = store_model(tr, since, until, options, beta, metrics.data);
	if (bands_set)
		store_bands(bands);
	SPI_finish();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(tr->cxt);
	PG_RETURN_INT32(id);
}
