/*-------------------------------------------------------------------------
 *
 * train_columns.c
 *		From the tokens of the training leads to the columns and weighted
 *		patterns the fit runs on.
 *
 * Every token gets its column: rare levels of a field share its "(other)",
 * rare fields and constant numbers are dropped, and a kept number gets the
 * columns of its ranges (bins.c) right after its own.  Then each lead
 * becomes its sorted (column, value) pairs, numbers standardised, and
 * identical leads of a fold are kept once with their counts of leads and
 * wins.
 *
 * IDENTIFICATION
 *		src/train_columns.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/memutils.h"

#include "bins.h"
#include "train.h"

/* A pattern being deduplicated: which one it is (-1: the candidate) */
typedef struct PatternEntry
{
	uint32		hash;
	char		status;
	int64		pattern;
} PatternEntry;

/* Adds a column for a name; returns its number */
static int32
add_column(Trainer *tr, const char *name, Token *numeric)
{
	int64		cap = tr->columns_cap;

	/* both arrays grow alike from the same capacity */
	tr->column_names = train_grow(tr->cxt, tr->column_names, &cap, tr->ncols + 1,
							sizeof(char *));
	cap = tr->columns_cap;
	tr->column_token = train_grow(tr->cxt, tr->column_token, &cap, tr->ncols + 1,
							sizeof(Token *));
	tr->columns_cap = cap;
	tr->column_names[tr->ncols] = MemoryContextStrdup(tr->cxt, name);
	tr->column_token[tr->ncols] = numeric;
	return tr->ncols++;
}

/* How many stored values of a number choose its cuts, at most */
#define BIN_SAMPLE		16384

/*
 * Adds to sample[i] the stored values of token i that the leads held here
 * draw for it, in the order of the leads, until it holds cap[i]: those
 * whose draw (a hash of lead_id) is a multiple of stride[i] (0: none).
 */
void
sample_leads(Trainer *tr, const int64 *stride, const int64 *cap,
			 float4 **sample, int *nsample)
{
	int64		r,
				k;

	for (r = 0; r < tr->nrows - tr->remote_rows; r++)
	{
		for (k = tr->rows[r].raw_start; k < LEAD_RAW_END(tr, r); k++)
		{
			int32		i = tr->raw[k].token;

			if (stride[i] != 0 && tr->rows[r].draw % stride[i] == 0 &&
				nsample[i] < cap[i])
				sample[i][nsample[i]++] = tr->raw[k].value;
		}
	}
}

/*
 * The stored values of every number seen min_count times, from a sample
 * of about BIN_SAMPLE of the leads that have it, chosen by lead_id
 * (sample_leads), so that the sample, and the cuts, do not depend on the
 * order the leads were read in.  The leads a worker holds add theirs after
 * those here, as if all were here.
 */
static float4 **
sample_numbers(Trainer *tr, int *nsample)
{
	float4	  **sample = palloc0(sizeof(float4 *) * tr->ntokens);
	int64	   *stride = palloc0(sizeof(int64) * tr->ntokens);
	int64	   *cap = palloc0(sizeof(int64) * tr->ntokens);
	int32		i;

	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];

		if (!t->numeric || t->count < tr->opt.min_count)
			continue;
		stride[i] = Min(t->count / BIN_SAMPLE + 1, PG_UINT16_MAX);
		/* twice the expected draw: more is as likely as never */
		cap[i] = 2 * (t->count / stride[i]) + 64;
		sample[i] = palloc(sizeof(float4) * cap[i]);
	}
	if (tr->remote_rows > 0)
		remote_sample_begin(tr, stride, cap);
	sample_leads(tr, stride, cap, sample, nsample);
	if (tr->remote_rows > 0)
		remote_sample_end(tr, cap, sample, nsample);
	pfree(stride);
	pfree(cap);
	return sample;
}

/*
 * What counting and encoding need of a token, apart from the rest of it: a
 * lead's entries hop from token to token, and a Token spans three cache
 * lines where this is half of one.
 */
typedef struct TokenCoding
{
	int32		column;			/* -1: dropped */
	int32		ncuts;
	bool		numeric;
	bool		log;
	double		mean;			/* of the transform the model uses */
	double		std;
	const float4 *bounds;
	const int32 *bin_column;
	int64	   *bin_count;
} TokenCoding;

/* The codings of every token of tr, in a new array */
static TokenCoding *
token_codings(Trainer *tr)
{
	TokenCoding *codings = palloc(sizeof(TokenCoding) * Max(tr->ntokens, 1));
	int32		i;

	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];
		TokenCoding *c = &codings[i];

		c->column = t->column;
		c->ncuts = t->ncuts;
		c->numeric = t->numeric;
		c->log = t->log;
		c->mean = token_moments(t)->mean;
		c->std = moments_std(token_moments(t));
		c->bounds = t->bounds;
		c->bin_column = t->bin_column;
		c->bin_count = t->bin_count;
	}
	return codings;
}

/* Counts the stored values here in each range of their number */
void
count_bins(Trainer *tr)
{
	TokenCoding *codings = token_codings(tr);
	int64		k;

	for (k = 0; k < tr->nraw; k++)
	{
		const TokenCoding *c = &codings[tr->raw[k].token];

		if (c->ncuts > 0)
			c->bin_count[bin_of_stored(c->bounds, c->ncuts, tr->raw[k].value)]++;
	}
	pfree(codings);

	/* what the worker's counts will be added to: those of the entries here */
	for (k = 0; k < tr->ntokens; k++)
	{
		Token	   *t = &tr->tokens[k];
		int			b;

		t->ranged_here = 0;
		for (b = 0; t->ncuts > 0 && b <= t->ncuts; b++)
			t->ranged_here += t->bin_count[b];
	}
}

/*
 * Cuts every number seen min_count times into at most opt.bins ranges
 * (bins.c) and counts the values in each range.
 */
void
choose_bins(Trainer *tr)
{
	int		   *nsample = palloc0(sizeof(int) * tr->ntokens);
	float4	  **sample;
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
	if (tr->remote_rows > 0)
		remote_count_bins_begin(tr);
	count_bins(tr);
	if (tr->remote_rows > 0)
		remote_count_bins_end(tr);
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
 *
 * Columns go field by field, in the order the fields were first met, and
 * within a field in the order its tokens were.  A lead has its fields in
 * much the same order (the fixed ones, then the free ones, sorted as jsonb
 * keeps them), so its cells come nearly sorted by column (sort_cells).
 */
void
assign_columns(Trainer *tr)
{
	tokens_hash *other = tokens_create(tr->cxt, 64, NULL);
	tokens_hash *fields = tokens_create(tr->cxt, 64, NULL);
	int64	   *field_count = palloc0(sizeof(int64) * Max(tr->ntokens, 1));
	int32	   *field_of = palloc(sizeof(int32) * Max(tr->ntokens, 1));
	int32	   *order = palloc(sizeof(int32) * Max(tr->ntokens, 1));
	int32	   *first = palloc0(sizeof(int32) * (Max(tr->ntokens, 1) + 1));
	int32		nfields = 0;
	int32		i,
				j;
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

	/* the tokens field by field: a counting sort, stable within a field */
	for (i = 0; i < tr->ntokens; i++)
	{
		e = tokens_insert(fields, tr->tokens[i].field, &found);
		if (!found)				/* a lone "(present)": counted 0, dropped */
			e->token = nfields++;
		field_of[i] = e->token;
		first[e->token + 1]++;
	}
	for (j = 0; j < nfields; j++)
		first[j + 1] += first[j];
	for (i = 0; i < tr->ntokens; i++)
		order[first[field_of[i]]++] = i;

	add_column(tr, "(intercept)", NULL);
	for (j = 0; j < tr->ntokens; j++)
	{
		Token	   *t = &tr->tokens[order[j]];

		if (field_count[field_of[order[j]]] < tr->opt.min_count)
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
 * Orders a lead's cells by column.  Columns are numbered field by field
 * (assign_columns), a number's ranges after it, so a lead's cells come
 * nearly in order and insertion sort is the fast way.
 */
static void
sort_cells(PatternCell *row, int64 len)
{
	int64		i,
				j;

	for (i = 1; i < len; i++)
	{
		PatternCell c = row[i];

		for (j = i; j > 0 && row[j - 1].col > c.col; j--)
			row[j] = row[j - 1];
		row[j] = c;
	}
}

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
	h = hash_bytes((const unsigned char *) &tr->pt.cells[from],
				   (int) ((to - from) * sizeof(PatternCell)));
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
		memcmp(&tr->pt.cells[af], &tr->pt.cells[bf],
			   (at - af) * sizeof(PatternCell)) == 0;
}

/* Patterns are deduplicated while the first this many leads show it pays */
#define PATTERNS_PROBE	65536

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
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * How many raw entries here give two cells: a kept number and its range
 * (counted by count_bins()).  The others give one, or none when their
 * token has no column.
 */
static int64
entries_with_range(Trainer *tr)
{
	int32		i;
	int64		n = 0;

	for (i = 0; i < tr->ntokens; i++)
	{
		Token	   *t = &tr->tokens[i];

		if (t->column >= 0 && t->ncuts > 0)
			n += t->ranged_here;
	}
	return n;
}

/*
 * Writes the cells of lead i, whose raw entries begin at raw[0], into row:
 * its sorted (column, value) pairs, numbers standardised.  Returns how
 * many.
 */
static int64
encode_lead(Trainer *tr, const TokenCoding *codings, int64 i,
			const RawEntry *raw, PatternCell *row)
{
	int64		n = LEAD_RAW_END(tr, i) - tr->rows[i].raw_start;
	int64		len = 0,
				k;

	/* map tokens to columns; several rare levels may share "(other)" */
	for (k = 0; k < n; k++)
	{
		const TokenCoding *c = &codings[raw[k].token];
		double		stored = raw[k].value;

		if (c->column < 0)
			continue;
		row[len].col = c->column;
		row[len].val = c->numeric ?
			(float4) ((stored_value(c->log, stored) - c->mean) / c->std) : 1.0f;
		len++;
		if (c->ncuts > 0)
		{
			int32		col = c->bin_column[bin_of_stored(c->bounds, c->ncuts,
														  raw[k].value)];

			if (col >= 0)
			{
				row[len].col = col;
				row[len].val = 1.0f;
				len++;
			}
		}
	}
	sort_cells(row, len);
	return len;
}

/*
 * Encodes every lead held here as its cells, in the place of the raw
 * entries, which are not needed after this: a raw entry is the size of a
 * cell and gives at most two, so the entries are first moved up by the
 * number that give two (entries_with_range()), and the cells of the
 * leads up to i, written from the start, never reach the entries of
 * lead i + 1.  This spares a second array as large as the first (a third
 * of a GB for a million leads) and the page faults of filling it.
 * Returns the cells, which take tr->raw's memory; lens[i] is how many lead
 * i has, *ncells how many in all.
 */
static PatternCell *
encode_leads(Trainer *tr, int32 *lens, int64 *ncells)
{
	int64		local = tr->nrows - tr->remote_rows,
				shift = entries_with_range(tr),
				size = Max(tr->nraw + shift, 1),
				at = 0,
				i;
	/* a lead has each token at most once, a number with its range */
	PatternCell *row = palloc(sizeof(PatternCell) * 2 * Max(tr->ntokens, 1));
	TokenCoding *codings = token_codings(tr);
	PatternCell *cells;
	RawEntry   *raw;

	StaticAssertStmt(sizeof(RawEntry) == sizeof(PatternCell),
					 "cells are written over raw entries");
	if (tr->raw_cap < size)
	{
		tr->raw = tr->raw ? repalloc_huge(tr->raw, sizeof(RawEntry) * size) :
			MemoryContextAllocHuge(tr->cxt, sizeof(RawEntry) * size);
		tr->raw_cap = size;
	}
	raw = tr->raw + shift;
	memmove(raw, tr->raw, sizeof(RawEntry) * tr->nraw);
	cells = (PatternCell *) tr->raw;

	for (i = 0; i < local; i++)
	{
		int64		len = encode_lead(tr, codings, i, raw + tr->rows[i].raw_start,
									  row);

		/* the lead's entries are read: its cells may overwrite them */
		Assert(at + len <= shift + LEAD_RAW_END(tr, i));
		memcpy(&cells[at], row, sizeof(PatternCell) * len);
		lens[i] = (int32) len;
		at += len;
	}
	pfree(row);
	pfree(codings);

	/* the raw entries are gone; their memory is the cells' now */
	tr->raw = NULL;
	tr->nraw = tr->raw_cap = 0;
	*ncells = at;
	return cells;
}

/*
 * Keeps each distinct pattern of leads first..last-1, whose cells follow
 * each other from cell from (lens[i] for lead i), once per fold with its
 * count of leads and wins, after the patterns kept so far.  Each lead's
 * cells are moved down to the end of the patterns kept and either become
 * a new pattern or are dropped for an equal one.  Leads with a continuous
 * number (a budget) are nearly all distinct: when the first PATTERNS_PROBE
 * leads gave almost as many patterns, the rest are kept one pattern per
 * lead without hashing them.  Returns where the cells of lead last begin.
 */
static int64
keep_patterns(Trainer *tr, int64 first, int64 last, const int32 *lens,
			  int64 from)
{
	Patterns   *pt = &tr->pt;
	int64		base = pt->npatterns,
				i;
	patterns_hash *index = patterns_create(tr->cxt,
										   Min(Max(last - first, 1), PATTERNS_PROBE),
										   tr);

	for (i = first; i < last; i++)
	{
		int64		len = lens[i],
					p = pt->npatterns;
		bool		found = false;

		/* the candidate: the lead's cells after the patterns kept */
		if (pt->start[p] != from)
			memmove(&pt->cells[pt->start[p]], &pt->cells[from],
					sizeof(PatternCell) * len);
		from += len;
		pt->n[p] = (double) len;	/* the candidate's length */
		pt->fold[p] = tr->rows[i].fold;
		if (index != NULL)
		{
			PatternEntry *e = patterns_insert(index, -1, &found);

			if (found)
				p = e->pattern;
			else
				e->pattern = p;
		}
		if (!found)
		{
			pt->npatterns++;
			pt->start[pt->npatterns] = pt->start[p] + len;
			pt->n[p] = 0;
			pt->y[p] = 0;
		}
		pt->n[p] += 1;
		pt->y[p] += tr->rows[i].won ? 1 : 0;
		tr->row_pattern[i] = p;

		if (index != NULL && i + 1 - first == PATTERNS_PROBE &&
			pt->npatterns - base > PATTERNS_PROBE * 0.9)
		{
			patterns_destroy(index);
			index = NULL;
		}
	}
	if (index != NULL)
		patterns_destroy(index);
	return from;
}

/*
 * Encodes every lead as its cells (encode_leads) and keeps the distinct
 * patterns of the leads of each half of the table apart (keep_patterns):
 * the fits' sums are cut in two where the second half's begin (fit.h:
 * Patterns.split).  A parallel worker that read the second half encodes
 * and keeps its patterns while this backend does the first, and sends what
 * the backend needs of them but their cells (train_parallel.c); without
 * one, this backend keeps both halves' the same way, so that the patterns
 * and the sums are the same either way.
 */
void
build_patterns(Trainer *tr)
{
	Patterns   *pt = &tr->pt;
	int64		nrows = Max(tr->nrows, 1),
				ncells,
				from;
	int32	   *lens = MemoryContextAllocHuge(tr->cxt, sizeof(int32) * nrows);

	if (tr->remote_rows > 0)
		remote_encode_begin(tr);
	pt->cells = encode_leads(tr, lens, &ncells);

	pt->ncols = tr->ncols;
	pt->npatterns = 0;
	pt->start = MemoryContextAllocHuge(tr->cxt, sizeof(int64) * (nrows + 1));
	pt->n = MemoryContextAllocHuge(tr->cxt, sizeof(double) * nrows);
	pt->y = MemoryContextAllocHuge(tr->cxt, sizeof(double) * nrows);
	pt->fold = MemoryContextAllocHuge(tr->cxt, sizeof(char) * nrows);
	tr->row_pattern = MemoryContextAllocHuge(tr->cxt, sizeof(int64) * nrows);
	pt->start[0] = 0;
	pt->helper = NULL;

	from = keep_patterns(tr, 0, tr->part_rows, lens, 0);
	pt->split = pt->npatterns;
	if (tr->remote_rows > 0)
		remote_patterns(tr);
	else
		keep_patterns(tr, tr->part_rows, tr->nrows, lens, from);
	pfree(lens);
}
