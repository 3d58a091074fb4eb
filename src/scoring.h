/*-------------------------------------------------------------------------
 *
 * scoring.h
 *		Shared structures and prototypes of the scoring extension.
 *
 * A lead is turned into features by features.c (its client and history by
 * client.c; the ranges of its numbers by bins.c), scored by the active model
 * (model.c) that cache.c keeps per backend, trained by train.c
 * (train_columns.c, train_store.c; fit.c fits), checked against JSON
 * conditions compiled by condition.c and routed by route.c.  lead_trigger.c
 * ties them together for every inserted, updated or deleted lead (closings.c
 * holds the wins a client history still counts); totals.c keeps the monthly
 * totals the BI views read; render.c fills the messages of follow-up
 * sequences.
 *
 * IDENTIFICATION
 *		src/scoring.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCORING_H
#define SCORING_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/relcache.h"

/*
 * SQLSTATEs of the product's own errors (class SC), so that CRM code can
 * tell them apart from PostgreSQL's.
 */
#define ERRCODE_SCORING_TRAINING_DATA	MAKE_SQLSTATE('S','C','0','0','1')
#define ERRCODE_SCORING_NO_MODEL		MAKE_SQLSTATE('S','C','0','0','2')
#define ERRCODE_SCORING_INVALID_MODEL	MAKE_SQLSTATE('S','C','0','0','3')

/* Label of the level that stands for rare or unseen categories */
#define LEVEL_OTHER		"(other)"
/* Label of the level that stands for a missing value of a fixed field */
#define LEVEL_MISSING	"(missing)"
/* Suffix of the indicator that a free numeric feature is present */
#define LEVEL_PRESENT	"(present)"

/* ----------------------------------------------------------------
 * condition.c: the JSON condition language of refusal rules and routes
 * ----------------------------------------------------------------
 */

typedef struct Condition Condition;

/*
 * Looks up the value a condition key names ("shop", "client.kind",
 * "features.colour", ...) in the caller's row.  Returns false when the
 * value is missing; otherwise fills *out with a scalar (jbvString,
 * jbvNumeric or jbvBool).
 */
typedef bool (*ConditionLookup) (void *ctx, const char *key, JsonbValue *out);

extern Condition *condition_compile(Jsonb *cond);
extern bool condition_eval(const Condition *cond, ConditionLookup lookup,
						   void *ctx);

/* ----------------------------------------------------------------
 * features.c: what is known about a lead at entry
 * ----------------------------------------------------------------
 */

/* A lead with its client and history, as read from its row */
typedef struct LeadInput
{
	int64		lead_id;
	const char *shop;			/* NULL when missing */
	const char *channel;
	const char *category;
	const char *brand;
	Numeric		budget;			/* NULL when missing */
	Jsonb	   *features;		/* never NULL; may be any JSON shape */

	bool		has_client;
	const char *client_kind;
	const char *client_industry;
	const char *client_okved;
	int			client_core;	/* -1 missing, 0 false, 1 true */
	Numeric		client_turnover;
	int64		prior_leads;	/* the client's leads created before this one */
	int64		prior_wins;		/* of which won before this one was created */
} LeadInput;

/*
 * Receives the features of one lead.  A category is a field with a level
 * of len bytes, not ended by a NUL (a JSON string is passed where it lies;
 * NULL level: missing); a number is a field with its finite value, as it
 * came (the sink applies feature_transform() where it needs to).
 *
 * free_field, when set, names the fields of features_emit_all_free(): it
 * gets each JSON key, before its value's calls, and returns the
 * "features.KEY" name (free_field_name()) to pass them, in memory that
 * lasts while the sink does.  A sink that sees many leads can so name each
 * key once and know the field by its pointer.  Unset, the name is built
 * into a scratch buffer for each key.
 */
typedef struct FeatureSink
{
	void		(*category) (struct FeatureSink *sink, const char *field,
							 const char *level, int len);
	void		(*number) (struct FeatureSink *sink, const char *field,
						   double value);
	const char *(*free_field) (struct FeatureSink *sink, const char *key,
							   int keylen);
} FeatureSink;

extern void features_emit_fixed(const LeadInput *lead, FeatureSink *sink);
/* A free field a model knows: its "features.KEY" name and the JSON key */
typedef struct FreeField
{
	const char *name;
	const char *key;
	int			keylen;
} FreeField;

extern void free_field_init(FreeField *field, const char *name);
extern void features_emit_free(Jsonb *features, const FreeField *fields,
							   int nfields, FeatureSink *sink);
extern void features_emit_all_free(Jsonb *features, FeatureSink *sink,
								   StringInfo field);
extern void free_field_name(StringInfo buf, const char *key, int keylen);
extern double feature_transform(double x);
extern bool small_numeric_decimal(Numeric num, int64 *m, int *e);
extern bool numeric_to_finite_double(Numeric num, double *result);
extern char *client_segment(const LeadInput *lead);

/* ----------------------------------------------------------------
 * model.c: a trained model in memory
 * ----------------------------------------------------------------
 */

typedef struct Model Model;

/* One term of a score, for explain() */
typedef struct Contribution
{
	const char *feature;
	const char *value;
	double		contribution;
} Contribution;

extern Model *model_build(int32 model_id, double intercept, Jsonb *weights,
						  Jsonb *numeric_features, Jsonb *ltv);
extern int32 model_id(const Model *model);
extern double model_logit(const Model *model, const LeadInput *lead,
						  List **contributions);
extern Numeric model_ltv(const Model *model, const char *segment);
extern double logistic(double logit);

/* ----------------------------------------------------------------
 * cache.c: the active model and configuration of this backend
 * ----------------------------------------------------------------
 */

/* A route: the first whose condition matches names tier and skill */
typedef struct RouteRule
{
	int32		position;
	Condition  *condition;
	char	   *tier;			/* NULL: any tier */
	char	   *skill;			/* NULL: no skill required */
} RouteRule;

typedef struct ScoringConfig
{
	Model	   *model;			/* the active model, or NULL */
	int			nbands;			/* priority bands, best first */
	int16		band_priority[4];
	Numeric		band_min[4];
	int			nrules;			/* active refusal rules */
	char	  **rule_names;
	Condition **rules;
	Numeric		default_margin;
	Numeric		max_budget;
	struct BrandMarginHash *brands;
	int			nroutes;		/* routes in force, in position order */
	RouteRule  *routes;
	int64		presence_timeout;	/* microseconds */
	int64		shift_guard;
	int64		accept_timeout;
	bool		balance_by_profit;	/* balance_by = 'expected_profit' */
} ScoringConfig;

extern ScoringConfig *scoring_config(void);
extern bool brand_margin(ScoringConfig *config, const char *brand,
						 Numeric *margin, double *margin_double);
extern Model *load_model(int32 model_id);
extern void scoring_cache_init(void);

/* ----------------------------------------------------------------
 * route.c: who gets a ready lead
 * ----------------------------------------------------------------
 */

typedef struct RouteRequest
{
	int64		lead_id;
	int16		priority;
	const int32 *lapsed;		/* managers who let the lead lapse */
	int			nlapsed;
	TimestampTz now;
	bool		requeue;		/* placing a queued lead: no log if it stays */
	bool		reassign;		/* moving a lapsed lead */
	bool		may_wait;		/* may wait for a busy manager's load row */
	ConditionLookup lookup;		/* reads the lead for route conditions */
	void	   *ctx;
} RouteRequest;

typedef struct RouteResult
{
	const char *status;			/* 'assigned', 'queued' or 'auto' */
	int32		manager_id;		/* when assigned */
	const char *flag;			/* a flag for the lead, or NULL */
} RouteResult;

extern void route_init(void);
extern void route_lead(const RouteRequest *req, const ScoringConfig *config,
					   RouteResult *res);
extern void manager_load_adjust(int32 manager_id, int open_delta, bool received,
								Numeric profit, TimestampTz now);

/* scoring.c: the moment routing takes for now */
extern TimestampTz scoring_now_override;
extern bool scoring_now_overridden;
extern TimestampTz scoring_now(void);
extern SPIPlanPtr keep_plan(SPIPlanPtr *plan, const char *sql, int nargs,
							Oid *argtypes);
extern void totals_init(void);
extern AttrNumber trigger_column(Relation rel, const char *trigger,
								 const char *column);
extern void transition_table_foreach(Tuplestorestate *table, TupleDesc desc,
									 void (*fn) (TupleTableSlot *slot, void *arg),
									 void *arg);

/* ----------------------------------------------------------------
 * client.c and lead_trigger.c
 * ----------------------------------------------------------------
 */

/*
 * closings.c: a min-heap of the closing moments of won leads that a
 * client's later leads are still to count; v is allocated in cxt.
 */
typedef struct Closings
{
	TimestampTz *v;
	int			n;
	int			cap;
	MemoryContext cxt;
} Closings;

extern void closings_push(Closings *h, TimestampTz t);
extern int64 closings_settle(Closings *h, TimestampTz at);

/*
 * A lead the trigger inserts, as the command's memo of client histories
 * (client.c) needs it: the relation, whether no other BEFORE INSERT row
 * trigger could drop or change the lead after this one, and what a later
 * lead of its client counts of it.
 */
typedef struct InsertedLead
{
	Relation	rel;			/* scoring.lead */
	bool		last_trigger;
	bool		has_client_id;
	int64		client_id;
	TimestampTz created_at;
	TimestampTz won_at;			/* closed_at of a won lead, else DT_NOEND */
} InsertedLead;

extern void client_init(void);
extern bool is_scoring_lead(Relation rel);
extern void client_history_forget(void);
extern void lead_input_from_client(LeadInput *lead, int64 client_id,
								   TimestampTz created_at,
								   const InsertedLead *insert, bool trigger);
extern void client_history_passed(const InsertedLead *insert);
extern void lead_client_copy(LeadInput *dst, const LeadInput *src);

/* client_cache.c: this backend's copy of the clients' scoring attributes */
extern void client_cache_init(void);
extern bool client_cache_get(int64 client_id, LeadInput *lead);
extern void client_cache_put(Oid client_relid, int64 client_id,
							 const LeadInput *lead);

/* visible.c: this backend's memo of the leads its walks found visible */
typedef struct VisibleLeads VisibleLeads;	/* one client's noted leads */
extern void visible_init(void);
extern bool visible_begin(Oid lead_relid);
extern VisibleLeads *visible_client(int64 client_id);
extern bool visible_known(const VisibleLeads *seen, ItemPointer tid);
extern bool visible_note(VisibleLeads **seen, int64 client_id, ItemPointer tid,
						 TupleTableSlot *slot);
extern uint64 visible_generation(void);

/*
 * history_cache.c: the client histories this backend counted, kept
 * between single-row leads when the library is preloaded
 */
typedef struct HistoryStamp
{
	uint64		epoch;			/* the shared counters a history depends on */
	uint64		bumps;
	uint64		generation;		/* visible.c's memo generation */
	TimestampTz upto;			/* the moment a history may be kept up to */
	TimestampTz raised_from;	/* the mark before the last confirmed raise */
	int64		raised_by;		/* and the lead that raised it */
	TimestampTz raised_won_at;
} HistoryStamp;

typedef struct KeptHistory KeptHistory;

typedef enum HistoryUse
{
	HISTORY_REUSED,				/* as kept */
	HISTORY_TOPPED_UP,			/* kept, and the entries after it walked */
	HISTORY_WALKED				/* walked whole */
} HistoryUse;

extern void history_cache_init(void);
extern void history_cache_inserted(Oid relid, int64 client_id,
								   TimestampTz created_at, TimestampTz won_at,
								   bool settled);
extern bool history_cache_usable(void);
extern void history_cache_stamp(int64 client_id, HistoryStamp *stamp);
extern const KeptHistory *history_cache_find(Oid lead_relid, int64 client_id,
											 const HistoryStamp *stamp);
extern TimestampTz history_cache_upto(const KeptHistory *kept);
extern void history_cache_count(const KeptHistory *kept, TimestampTz until,
								int64 *leads, int64 *wins);
extern void history_cache_keep(int64 client_id, const HistoryStamp *stamp,
							   bool add, int64 leads, const TimestampTz *wins,
							   int nwins);
extern void history_cache_counted(HistoryUse use);

extern void lead_trigger_init(void);

#endif							/* SCORING_H */
