/*-------------------------------------------------------------------------
 *
 * train.h
 *		What a training run holds, shared by the files of scoring.train():
 *		train.c (options, the pass over the leads, the entry point),
 *		train_parallel.c (the parallel worker: half of the reading, of the
 *		leads' encoding and of the fits), train_columns.c (columns, ranges
 *		of numbers, patterns) and
 *		train_store.c (lifetime uplift, bands, the model row).
 *
 * IDENTIFICATION
 *		src/train.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCORING_TRAIN_H
#define SCORING_TRAIN_H

#include <math.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "storage/block.h"
#include "utils/jsonb.h"

#include "fit.h"
#include "scoring.h"

/* Options of train(), with their defaults */
typedef struct TrainOptions
{
	double		l2;				/* regularisation strength */
	int			min_count;		/* rarer levels are pooled into "(other)" */
	int			bins;			/* ranges per number (bins.c); < 2: none */
	double		holdout;		/* share of leads measured, not fitted */
	int64		seed;			/* chooses the holdout leads */
	int			max_iter;
	int			warm_sample;	/* patterns the warm start fits; 0: none */
	bool		ltv;			/* learn the lifetime uplift */
	int			ltv_months;
	int			set_bands;		/* 1 yes, 0 no, -1 when there are none */
	double		band_shares[4];
	bool		activate;
} TrainOptions;

/*
 * A stored value of a number (its signed log, feature_transform()) in the
 * transform the model takes it in: the log, or the value itself
 */
static inline double
stored_value(bool log, double stored)
{
	if (log)
		return stored;
	return stored >= 0 ? expm1(stored) : -expm1(-stored);
}

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
	int64		ranged_here;	/* of them, in the entries here (count_bins) */
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

/*
 * Whether the len bytes at a and b are the same, as memcmp() == 0 says:
 * inline, eight at a time, for the short keys and levels of a lead, which
 * cost less to compare so than a call to memcmp() for each.
 */
static inline bool
same_bytes(const char *a, const char *b, int len)
{
	for (; len >= 8; a += 8, b += 8, len -= 8)
	{
		uint64		x,
					y;

		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return false;
	}
	for (; len > 0; a++, b++, len--)
		if (*a != *b)
			return false;
	return true;
}

/* A level of a field as a lead gives it: len bytes, not ended by a NUL */
typedef struct LevelKey
{
	const char *str;
	int32		len;
} LevelKey;

typedef struct LevelEntry
{
	LevelKey	level;			/* in its token's lasting name */
	uint32		hash;
	char		status;
	int32		token;
} LevelEntry;

#define SH_PREFIX		levels
#define SH_ELEMENT_TYPE LevelEntry
#define SH_KEY_TYPE		LevelKey
#define SH_KEY			level
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).str, (k).len)
#define SH_EQUAL(tb, a, b) \
	((a).len == (b).len && same_bytes((a).str, (b).str, (a).len))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * A field as training met it, fixed ("shop") or free (a key of features):
 * its name and the tokens its values were interned as, so that the same
 * field on the next lead costs a comparison and its level a short lookup.
 */
typedef struct Field
{
	char	   *key;			/* a free field's JSON key; a fixed one's name */
	int			keylen;
	char	   *name;			/* the sink's field: "features.KEY", "shop" */
	int			namelen;
	levels_hash *levels;		/* level -> token of "name=level"; NULL
								 * until a second level (field_level) */
	LevelKey	last_level;		/* the level met last (in its token's name) */
	int32		last_token;
	int32		number;			/* the field's numeric token, -1 until met */
	int32		next;			/* free: the key after it in the last lead */
} Field;

/* Fixed fields remembered by their place among a lead's (fixed_field) */
#define FIXED_PLACES	16

/* One token of one lead */
typedef struct RawEntry
{
	int32		token;
	float4		value;
} RawEntry;

/*
 * What training keeps of each lead besides its tokens.  The entries of the
 * last Trainer.remote_rows leads stay with the parallel worker that read
 * them; the first of those leads starts where the entries here end.
 */
typedef struct LeadRow
{
	int64		raw_start;
	double		potential;		/* budget x margin, NaN when unknown */
	int32		segment;
	bool		won;
	char		fold;			/* 0 training, 1 holdout */
	uint16		draw;			/* a hash of lead_id: see sample_numbers() */
} LeadRow;


/*
 * Where the raw entries of lead i end (those of lead i + 1 begin), for a
 * lead whose entries are here
 */
#define LEAD_RAW_END(tr, i) \
	((i) + 1 < (tr)->nrows ? (tr)->rows[(i) + 1].raw_start : (tr)->nraw)

/*
 * The clients of the training leads (read_histories): the moments of the
 * window at which each client has a lead, in order, each with the
 * client's leads created before it and those of them won and closed by
 * then (the same for all its leads of that moment); and through a small
 * hash on the client, where its moments are and its row of scoring.client.
 */
typedef struct HistoryMoment
{
	TimestampTz at;
	int64		leads;
	int64		wins;
} HistoryMoment;

typedef struct HistoryClient
{
	int64		client_id;
	char		status;
	int64		first;			/* its first moment in Histories.moments */
	int64		nmoments;
	int64		cursor;			/* the moment it was last looked up at */
	/* its row of scoring.client; kind is NULL when there is none */
	char	   *kind;
	char	   *industry;
	char	   *okved;
	int			core;			/* core_industry: -1 unknown, 0 or 1 */
	Numeric		turnover;
	char	   *segment;		/* for the lifetime uplift, once named */
	int32		segment_id;		/* its id in the trainer segment_of, which */
	const struct Trainer *segment_of;	/* may be one of two here */
} HistoryClient;

#define SH_PREFIX		history_clients
#define SH_ELEMENT_TYPE HistoryClient
#define SH_KEY_TYPE		int64
#define SH_KEY			client_id
/* the halves folded as hashint8() does */
#define SH_HASH_KEY(tb, k) \
	hash_bytes_uint32((uint32) (k) ^ (uint32) ((uint64) (k) >> 32))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct Histories
{
	MemoryContext cxt;			/* where they live */
	history_clients_hash *clients;
	HistoryMoment *moments;
	int64		nmoments;
	int64		cap;
} Histories;

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

	/* fields: free ones by JSON key, chained in the order of the last
	 * lead's keys; fixed ones by name and their place in a lead */
	Field	   *fields;
	int32		nfields;
	int32		fields_cap;
	tokens_hash *free_index;	/* JSON key -> index in fields */
	tokens_hash *fixed_index;	/* name -> index in fields */
	int32		free_first;		/* the first key of the last lead, or -1 */
	int32		free_previous;	/* the lead's key before this one, or -1 */
	Field	   *free_current;	/* the key whose value is being emitted */
	int32		fixed_place;	/* of the lead's next fixed field */
	int32		fixed_at[FIXED_PLACES]; /* index in fields, or -1 */
	const char *fixed_named[FIXED_PLACES];	/* the name it was passed by */

	/* the client history of every (client, moment) of the window */
	Histories  *histories;
	int			workers;		/* parallel workers that read leads */
	struct TrainParallel *parallel; /* the parallel section (train_parallel.c) */

	/* what a lead's potential profit is computed with while reading */
	ScoringConfig *config;
	double		default_margin; /* NaN when not set */
	double		max_budget;		/* NaN when not set */

	/*
	 * raw leads: the entries of lead i start at rows[i].raw_start.  The
	 * first part_rows leads come from the first half of the table; those
	 * of the last remote_rows are in the parallel worker that read them
	 * (train_parallel.c), which samples, counts and encodes them when asked
	 * and keeps their patterns.
	 */
	RawEntry   *raw;
	int64		nraw;
	int64		raw_cap;
	LeadRow    *rows;
	int64		nrows;
	int64		rows_cap;
	int64		nwon;
	int64		part_rows;
	int64		remote_rows;

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

/* train.c */
extern void *train_grow(MemoryContext cxt, void *array, int64 *cap, int64 need,
						Size sz);
extern Trainer *trainer_create(Jsonb *options);
extern void trainer_set_config(Trainer *tr, ScoringConfig *config);
extern Histories *read_histories(MemoryContext cxt, TimestampTz since,
								 TimestampTz until);
extern void free_histories(Histories *h);
extern void read_training_part(Trainer *tr, TimestampTz since, TimestampTz until,
							   BlockNumber first, BlockNumber last);
extern void merge_tokens(Trainer *tr, const Token *tokens, int32 n, int32 *map);
extern void merge_segments(Trainer *tr, char *const *names, int32 n, int32 *map);
extern void append_rows(Trainer *tr, const LeadRow *rows, int64 n,
						const int32 *segmap);
extern void append_raw(Trainer *tr, const RawEntry *raw, int64 n,
					   const int32 *tokmap);
extern double moments_std(const Moments *m);
extern bool prefers_log(const Moments *raw);
extern const Moments *token_moments(const Token *t);
extern int32 segment_id(Trainer *tr, const LeadInput *lead);

/* train_parallel.c */
typedef struct TrainParallel TrainParallel;
extern void read_training_data(Trainer *tr, TimestampTz since, TimestampTz until,
							   ScoringConfig *config);
extern void remote_sample_begin(Trainer *tr, const int64 *stride,
								const int64 *cap);
extern void remote_sample_end(Trainer *tr, const int64 *cap, float4 **sample,
							  int *nsample);
extern void remote_count_bins_begin(Trainer *tr);
extern void remote_count_bins_end(Trainer *tr);
extern void remote_encode_begin(Trainer *tr);
extern void remote_patterns(Trainer *tr);
extern void use_helper(Trainer *tr);
extern void end_parallel(Trainer *tr);

/* train_columns.c */
extern void sample_leads(Trainer *tr, const int64 *stride, const int64 *cap,
						 float4 **sample, int *nsample);
extern void count_bins(Trainer *tr);
extern void choose_bins(Trainer *tr);
extern void assign_columns(Trainer *tr);
extern void build_patterns(Trainer *tr);

/* train_store.c */
extern int64 learn_ltv(Trainer *tr, TimestampTz until);
extern bool compute_bands(Trainer *tr, const double *beta, double *bands);
extern int32 store_model(Trainer *tr, TimestampTz since, TimestampTz until,
						 Jsonb *options, const double *beta, const char *metrics);
extern void store_bands(const double *bands);
extern void check_store_allowed(void);
extern bool have_bands(void);

#endif							/* SCORING_TRAIN_H */
