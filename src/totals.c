/*-------------------------------------------------------------------------
 *
 * totals.c
 *		What keeps scoring.lead_totals, the aggregate the monthly views
 *		read: the bucket a moment falls in, and the statement trigger on
 *		scoring.lead that adds each statement's changes.
 *
 * The views put a lead in the month of its created_at in the session's
 * time zone, so the aggregate cannot be kept by month.  It is kept by
 * bucket instead, chosen so that every bucket lies in one month whatever
 * the session's time zone: UTC offsets in use run from -12:00 to +14:00
 * in steps of 15 minutes, so the moments from 12 hours after the start of
 * a UTC month to 14 hours before its end are in that month everywhere and
 * make one bucket; near a month's edges the buckets are 15 minutes long.
 * A month is thus 1 + 104 buckets, a bucket is named by its first moment,
 * and date_trunc('month', bucket) in any session gives the lead's month.
 *
 * The statement triggers on scoring.lead add what each statement changed,
 * read from its transition tables: the rows it inserted count +1, the
 * rows it deleted -1, an update both; summed here by bucket and assignee.
 * Each sum that changes something is appended as a row of its own (a
 * delta), never added to an existing row: concurrent transactions never
 * wait for each other on the totals, and a transaction making many
 * changes never walks a chain of its own row versions.  compact_totals()
 * folds the deltas into one compacted row per bucket and assignee.
 *
 * IDENTIFICATION
 *		src/totals.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "scoring.h"

#define QUARTER_HOUR	(15 * USECS_PER_MINUTE)
/* the widest UTC offsets in use: UTC+14:00 and UTC-12:00 */
#define EAST_MOST		(14 * USECS_PER_HOUR)
#define WEST_MOST		(12 * USECS_PER_HOUR)

/* The first moments of t's UTC month and of the next one; false if out of range */
static bool
utc_month_bounds(TimestampTz t, TimestampTz *start, TimestampTz *next)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return false;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, start) != 0)
		return false;
	if (++tm.tm_mon > MONTHS_PER_YEAR)
	{
		tm.tm_mon = 1;
		tm.tm_year++;
	}
	return tm2timestamp(&tm, 0, NULL, next) == 0 && IS_VALID_TIMESTAMP(*next);
}

/* The bucket of moment t (see the top of this file) */
static TimestampTz
total_bucket(TimestampTz t)
{
	TimestampTz month_start,
				next_month;
	TimestampTz rem;

	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	if (utc_month_bounds(t, &month_start, &next_month) &&
		t >= month_start + WEST_MOST && t < next_month - EAST_MOST)
		return month_start + WEST_MOST;

	/* floor to the quarter hour, before 2000 (negative t) too */
	rem = t % QUARTER_HOUR;
	if (rem < 0)
		rem += QUARTER_HOUR;
	return t - rem;
}

PG_FUNCTION_INFO_V1(scoring_total_bucket);

/* scoring.total_bucket(timestamptz): the bucket of a lead's created_at */
Datum
scoring_total_bucket(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(total_bucket(PG_GETARG_TIMESTAMPTZ(0)));
}

/* A bucket and an assignee (0: nobody): what a row of lead_totals adds up */
typedef struct TotalsKey
{
	TimestampTz bucket;
	int32		assignee_id;
} TotalsKey;

/* What one statement changes in one row of lead_totals */
typedef struct TotalsDelta
{
	TotalsKey	key;			/* hash key */
	char		status;			/* used by simplehash */
	int64		leads;
	int64		open_leads;
	Datum		forecast_profit;	/* numeric */
	Datum		won_profit;
	Datum		open_forecast_profit;
} TotalsDelta;

/* A statement's deltas by key: a simplehash, cheap to make for one row */
#define SH_PREFIX		deltas
#define SH_ELEMENT_TYPE TotalsDelta
#define SH_KEY_TYPE		TotalsKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k) \
	hash_combine(murmurhash32((uint32) (k).bucket ^ (uint32) ((k).bucket >> 32)), \
				 murmurhash32((uint32) (k).assignee_id))
#define SH_EQUAL(tb, a, b) \
	((a).bucket == (b).bucket && (a).assignee_id == (b).assignee_id)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The columns of scoring.lead that the totals read */
enum
{
	TCOL_CREATED_AT,
	TCOL_ASSIGNEE_ID,
	TCOL_STATUS,
	TCOL_FORECAST_PROFIT,
	TCOL_WON_PROFIT,
	NUM_TOTALS_COLUMNS
};

static const char *const totals_column_names[NUM_TOTALS_COLUMNS] = {
	"created_at", "assignee_id", "status", "forecast_profit", "won_profit"
};

/* The columns of scoring.lead_totals, in the order of DELTA_SQL's parameters */
enum
{
	DCOL_BUCKET,
	DCOL_ASSIGNEE_ID,
	DCOL_LEADS,
	DCOL_FORECAST_PROFIT,
	DCOL_WON_PROFIT,
	DCOL_OPEN_LEADS,
	DCOL_OPEN_FORECAST_PROFIT,
	DCOL_COMPACTED,
	NUM_DELTA_COLUMNS
};

static const char *const delta_column_names[NUM_DELTA_COLUMNS] = {
	"bucket", "assignee_id", "leads", "forecast_profit", "won_profit",
	"open_leads", "open_forecast_profit", "compacted"
};

/* Appends one delta to lead_totals, when it cannot be written directly */
#define DELTA_SQL \
	"INSERT INTO scoring.lead_totals (bucket, assignee_id, leads, forecast_profit," \
	" won_profit, open_leads, open_forecast_profit) VALUES ($1, $2, $3, $4, $5, $6, $7)"

static SPIPlanPtr delta_plan = NULL;
static SPIPlanPtr truncate_plan = NULL;

/*
 * Looked up once per backend, forgotten when a relation changes: the
 * columns of the table the trigger last fired on, and where the deltas go.
 */
typedef struct TotalsRels
{
	Oid			lead;			/* InvalidOid: attnums not looked up */
	int			attnums[NUM_TOTALS_COLUMNS];
	Oid			totals;			/* InvalidOid: not looked up */
	bool		shape_known;	/* whether the next three are set */
	bool		direct;			/* whether deltas may skip the INSERT */
	bool		unindexed;		/* whether no index takes a delta */
	AttrNumber	delta_attnums[NUM_DELTA_COLUMNS];
} TotalsRels;

static TotalsRels Rels;

static void
totals_rels_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Rels.lead)
		Rels.lead = InvalidOid;
	if (relid == InvalidOid || relid == Rels.totals)
		Rels.totals = InvalidOid;
}

void
totals_init(void)
{
	CacheRegisterRelcacheCallback(totals_rels_invalidate, (Datum) 0);
}

/* Looks up the columns of the table the trigger fired on */
static const int *
lead_attnums(Relation rel)
{
	int			i;

	if (Rels.lead == RelationGetRelid(rel))
		return Rels.attnums;
	for (i = 0; i < NUM_TOTALS_COLUMNS; i++)
		Rels.attnums[i] = trigger_column(rel, "lead totals trigger",
										 totals_column_names[i]);
	Rels.lead = RelationGetRelid(rel);
	return Rels.attnums;
}

/*
 * Finds the deltas' columns in lead_totals, and whether the table is as
 * the extension made it, so that deltas may skip the INSERT (see
 * open_totals())
 */
static bool
totals_as_shipped(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			known = 0;
	int			i;

	for (i = 0; i < NUM_DELTA_COLUMNS; i++)
	{
		Rels.delta_attnums[i] = SPI_fnumber(desc, delta_column_names[i]);
		if (Rels.delta_attnums[i] > 0)
			known++;
	}
	for (i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attisdropped)
			known++;
	return known == desc->natts && rel->trigdesc == NULL &&
		(desc->constr == NULL || desc->constr->num_check == 0) &&
		!rel->rd_rel->relrowsecurity;
}

/*
 * Whether no index of lead_totals ever holds a delta: every index is
 * partial, WHERE compacted, as the shipped one is, and deltas are never
 * compacted.  Then appending a delta is storing its row, without the
 * executor's machinery for indexes that would only find it fails their
 * predicate.
 */
static bool
deltas_unindexed(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		unindexed = true;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		List	   *pred = RelationGetIndexPredicate(index);
		Var		   *var = list_length(pred) == 1 ? linitial(pred) : NULL;

		if (var == NULL || !IsA(var, Var) ||
			var->varattno != Rels.delta_attnums[DCOL_COMPACTED])
			unindexed = false;
		index_close(index, AccessShareLock);
		if (!unindexed)
			break;
	}
	list_free(indexes);
	return unindexed;
}

/*
 * Opens scoring.lead_totals and finds out whether deltas may be written
 * to it directly: when it is as the extension made it, with no columns,
 * triggers, check constraints or row security of the user's, all that an
 * INSERT would do besides storing the row is keeping its indexes.  What
 * is found is current once the lock is held: taking it reads the
 * invalidations of what others changed, and if one was of lead_totals the
 * table is looked up again.
 */
static Relation
open_totals(void)
{
	for (;;)
	{
		Oid			relid = Rels.totals;
		Relation	rel;

		if (!OidIsValid(relid))
		{
			relid = get_relname_relid("lead_totals",
									  get_namespace_oid("scoring", false));
			if (!OidIsValid(relid))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("relation \"scoring.lead_totals\" does not exist")));
			Rels.totals = relid;
			Rels.shape_known = false;
		}
		rel = table_open(relid, RowExclusiveLock);
		if (Rels.totals == relid)
		{
			if (!Rels.shape_known)
			{
				Rels.direct = totals_as_shipped(rel);
				Rels.unindexed = Rels.direct && deltas_unindexed(rel);
				Rels.shape_known = true;
			}
			return rel;
		}
		table_close(rel, RowExclusiveLock);
	}
}

/*
 * The sums of one statement.  Every addition of numerics leaves the old
 * sum behind as garbage in "sums"; every SUMS_KEPT_ROWS rows the live sums
 * move to a fresh context, so memory stays bounded by the number of groups
 * however many rows the statement changed.
 */
typedef struct TotalsState
{
	deltas_hash *deltas;		/* in the caller's context */
	MemoryContext sums;			/* the numeric sums */
	MemoryContext row;			/* reset for every row */
	int			rows_since_move;
} TotalsState;

#define SUMS_KEPT_ROWS 8192

/* acc + sign * value, for numeric Datums; acc (Datum) 0 means nothing yet */
static Datum
numeric_accumulate(Datum acc, Datum value, int sign)
{
	if (acc == (Datum) 0)
		return sign > 0 ? datumCopy(value, false, -1) :
			DirectFunctionCall1(numeric_uminus, value);
	return DirectFunctionCall2(sign > 0 ? numeric_add : numeric_sub, acc, value);
}

/* Whether a numeric sum (Datum 0: nothing added) is zero */
static bool
numeric_sum_is_zero(Datum sum, Datum zero)
{
	return sum == (Datum) 0 ||
		DatumGetBool(DirectFunctionCall2(numeric_eq, sum, zero));
}

/* Copies a numeric sum into the current context */
static Datum
copy_sum(Datum sum)
{
	return sum == (Datum) 0 ? sum : datumCopy(sum, false, -1);
}

/* Moves the live sums to a fresh context and drops the garbage */
static void
move_sums(TotalsState *state)
{
	MemoryContext fresh = AllocSetContextCreate(MemoryContextGetParent(state->sums),
												"lead totals sums",
												ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(fresh);
	deltas_iterator it;
	TotalsDelta *delta;

	deltas_start_iterate(state->deltas, &it);
	while ((delta = deltas_iterate(state->deltas, &it)) != NULL)
	{
		delta->forecast_profit = copy_sum(delta->forecast_profit);
		delta->won_profit = copy_sum(delta->won_profit);
		delta->open_forecast_profit = copy_sum(delta->open_forecast_profit);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(state->sums);
	state->sums = fresh;
	state->rows_since_move = 0;
}

/* Adds one changed row, counted sign (+1 or -1) times */
static void
add_row(TotalsState *state, TupleTableSlot *slot, const int *attnums, int sign)
{
	TotalsKey	key;
	TotalsDelta *delta;
	Datum		d;
	bool		isnull;
	bool		found;
	bool		open;
	bool		won;
	char	   *status;
	MemoryContext old;

	d = slot_getattr(slot, attnums[TCOL_CREATED_AT], &isnull);
	key.bucket = isnull ? 0 : total_bucket(DatumGetTimestampTz(d));
	d = slot_getattr(slot, attnums[TCOL_ASSIGNEE_ID], &isnull);
	key.assignee_id = isnull ? 0 : DatumGetInt32(d);

	delta = deltas_insert(state->deltas, key, &found);
	if (!found)
	{
		delta->leads = delta->open_leads = 0;
		delta->forecast_profit = delta->won_profit = (Datum) 0;
		delta->open_forecast_profit = (Datum) 0;
	}

	old = MemoryContextSwitchTo(state->row);
	d = slot_getattr(slot, attnums[TCOL_STATUS], &isnull);
	status = isnull ? "" : TextDatumGetCString(d);
	won = strcmp(status, "won") == 0;
	open = !won && strcmp(status, "lost") != 0 && strcmp(status, "refused") != 0;

	delta->leads += sign;
	if (open)
		delta->open_leads += sign;

	MemoryContextSwitchTo(state->sums);
	d = slot_getattr(slot, attnums[TCOL_FORECAST_PROFIT], &isnull);
	if (!isnull)
	{
		delta->forecast_profit = numeric_accumulate(delta->forecast_profit, d, sign);
		if (open)
			delta->open_forecast_profit =
				numeric_accumulate(delta->open_forecast_profit, d, sign);
	}
	d = slot_getattr(slot, attnums[TCOL_WON_PROFIT], &isnull);
	if (!isnull && won)
		delta->won_profit = numeric_accumulate(delta->won_profit, d, sign);
	MemoryContextSwitchTo(old);

	MemoryContextReset(state->row);
	if (++state->rows_since_move >= SUMS_KEPT_ROWS)
		move_sums(state);
}

/* A transition table being added, each row counted sign times */
typedef struct TotalsScan
{
	TotalsState *state;
	const int  *attnums;
	int			sign;
} TotalsScan;

static void
add_scanned_row(TupleTableSlot *slot, void *arg)
{
	TotalsScan *scan = (TotalsScan *) arg;

	add_row(scan->state, slot, scan->attnums, scan->sign);
}

/* Adds the rows of a transition table, each counted sign times */
static void
add_transition_table(TotalsState *state, Tuplestorestate *table, TupleDesc desc,
					 const int *attnums, int sign)
{
	TotalsScan	scan = {state, attnums, sign};

	transition_table_foreach(table, desc, add_scanned_row, &scan);
}

/* Whether a delta changes nothing */
static bool
delta_is_zero(const TotalsDelta *delta, Datum zero)
{
	return delta->leads == 0 && delta->open_leads == 0 &&
		numeric_sum_is_zero(delta->forecast_profit, zero) &&
		numeric_sum_is_zero(delta->won_profit, zero) &&
		numeric_sum_is_zero(delta->open_forecast_profit, zero);
}

/* The values of a delta's row, in the order of the DCOL_ columns */
static void
delta_values(const TotalsDelta *delta, Datum zero, Datum *values)
{
	values[DCOL_BUCKET] = TimestampTzGetDatum(delta->key.bucket);
	values[DCOL_ASSIGNEE_ID] = Int32GetDatum(delta->key.assignee_id);
	values[DCOL_LEADS] = Int64GetDatum(delta->leads);
	values[DCOL_FORECAST_PROFIT] = delta->forecast_profit ? delta->forecast_profit : zero;
	values[DCOL_WON_PROFIT] = delta->won_profit ? delta->won_profit : zero;
	values[DCOL_OPEN_LEADS] = Int64GetDatum(delta->open_leads);
	values[DCOL_OPEN_FORECAST_PROFIT] =
		delta->open_forecast_profit ? delta->open_forecast_profit : zero;
	values[DCOL_COMPACTED] = BoolGetDatum(false);
}

/*
 * Where the deltas go.  Directly into lead_totals, as the executor would
 * insert them, indexes included (as shipped, none takes a delta), without
 * an INSERT to plan and start for every statement: in a single-row INSERT
 * into scoring.lead that cost more than reading the lead's history.  Like
 * an index, the totals are the leads' own bookkeeping, so no privilege on
 * lead_totals is asked of the user.  Through the planned INSERT when the
 * user gave lead_totals triggers, check constraints, row security or
 * columns (open_totals()).
 */
typedef struct DeltaWriter
{
	Relation	rel;
	SPIPlanPtr	plan;			/* the INSERT; NULL: stored directly */
	EState	   *estate;
	ResultRelInfo *rri;			/* NULL: no index takes a delta */
	TupleTableSlot *slot;
	CommandId	cid;
} DeltaWriter;

static void
delta_writer_begin(DeltaWriter *w)
{
	Oid			argtypes[7] = {TIMESTAMPTZOID, INT4OID, INT8OID, NUMERICOID,
	NUMERICOID, INT8OID, NUMERICOID};

	memset(w, 0, sizeof(DeltaWriter));
	w->rel = open_totals();
	if (!Rels.direct)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		w->plan = keep_plan(&delta_plan, DELTA_SQL, 7, argtypes);
		return;
	}
	w->slot = MakeSingleTupleTableSlot(RelationGetDescr(w->rel), &TTSOpsVirtual);
	w->cid = GetCurrentCommandId(true);
	if (Rels.unindexed)
		return;
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 0, NULL, 0);
#if PG_VERSION_NUM < 140000
	w->estate->es_result_relation_info = w->rri;
#endif
	ExecOpenIndices(w->rri, false);
}

/* Appends one delta, its values in the order of the DCOL_ columns */
static void
write_delta(DeltaWriter *w, Datum *values)
{
	TupleTableSlot *slot = w->slot;
	int			i;

	if (w->plan != NULL)
	{
		int			rc = SPI_execute_plan(w->plan, values, NULL, false, 0);

		if (rc != SPI_OK_INSERT)
			elog(ERROR, "lead totals: %s", SPI_result_code_string(rc));
		return;
	}

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	for (i = 0; i < NUM_DELTA_COLUMNS; i++)
	{
		slot->tts_values[Rels.delta_attnums[i] - 1] = values[i];
		slot->tts_isnull[Rels.delta_attnums[i] - 1] = false;
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(w->rel, slot, w->cid, 0, NULL);
	if (w->rri != NULL && w->rri->ri_NumIndices > 0)
	{
		List	   *recheck;

#if PG_VERSION_NUM >= 160000
		recheck = ExecInsertIndexTuples(w->rri, slot, w->estate, false, false,
										NULL, NIL, false);
#elif PG_VERSION_NUM >= 140000
		recheck = ExecInsertIndexTuples(w->rri, slot, w->estate, false, false,
										NULL, NIL);
#else
		recheck = ExecInsertIndexTuples(slot, w->estate, false, NULL, NIL);
#endif
		list_free(recheck);
	}
}

static void
delta_writer_end(DeltaWriter *w)
{
	if (w->plan != NULL)
		SPI_finish();
	else
	{
		if (w->rri != NULL)
		{
			ExecCloseIndices(w->rri);
			FreeExecutorState(w->estate);
		}
		ExecDropSingleTupleTableSlot(w->slot);
	}
	table_close(w->rel, NoLock);
}

/* Appends the deltas that change something */
static void
write_deltas(deltas_hash *deltas)
{
	Datum		zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	DeltaWriter w;
	deltas_iterator it;
	TotalsDelta *delta;

	delta_writer_begin(&w);
	deltas_start_iterate(deltas, &it);
	while ((delta = deltas_iterate(deltas, &it)) != NULL)
	{
		Datum		values[NUM_DELTA_COLUMNS];

		if (delta_is_zero(delta, zero))
			continue;
		delta_values(delta, zero, values);
		write_delta(&w, values);
	}
	delta_writer_end(&w);
}

PG_FUNCTION_INFO_V1(scoring_lead_totals_trigger);

/*
 * The AFTER ... FOR EACH STATEMENT trigger on scoring.lead that keeps
 * scoring.lead_totals: insert and delete triggers have their transition
 * table, update triggers both; TRUNCATE empties the totals.  The changed
 * rows are summed here, by bucket and assignee, and each sum that changes
 * something is appended: a single-row insert costs one row.
 */
Datum
scoring_lead_totals_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	Relation	rel;
	const int  *attnums;
	TotalsState state;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("lead_totals_trigger() must be fired AFTER ... FOR EACH STATEMENT")));
	event = trigdata->tg_event;
	rel = trigdata->tg_relation;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_plan(keep_plan(&truncate_plan, "DELETE FROM scoring.lead_totals",
									   0, NULL), NULL, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not empty scoring.lead_totals");
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	if ((TRIGGER_FIRED_BY_INSERT(event) && trigdata->tg_newtable == NULL) ||
		(TRIGGER_FIRED_BY_DELETE(event) && trigdata->tg_oldtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(event) &&
		 (trigdata->tg_oldtable == NULL || trigdata->tg_newtable == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("lead_totals_trigger() needs the transition tables of its event")));
	attnums = lead_attnums(rel);

	state.deltas = deltas_create(CurrentMemoryContext, 8, NULL);
	state.sums = AllocSetContextCreate(CurrentMemoryContext, "lead totals sums",
									   ALLOCSET_DEFAULT_SIZES);
	state.row = AllocSetContextCreate(CurrentMemoryContext, "lead totals row",
									  ALLOCSET_SMALL_SIZES);
	state.rows_since_move = 0;
	if (trigdata->tg_oldtable != NULL)
		add_transition_table(&state, trigdata->tg_oldtable, RelationGetDescr(rel),
							 attnums, -1);
	if (trigdata->tg_newtable != NULL)
		add_transition_table(&state, trigdata->tg_newtable, RelationGetDescr(rel),
							 attnums, 1);
	write_deltas(state.deltas);
	return PointerGetDatum(NULL);
}
