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

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
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
	TotalsKey	key;			/* hash key: must be first */
	int64		leads;
	int64		open_leads;
	Datum		forecast_profit;	/* numeric */
	Datum		won_profit;
	Datum		open_forecast_profit;
} TotalsDelta;

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

/* Appends one delta to lead_totals */
#define DELTA_SQL \
	"INSERT INTO scoring.lead_totals (bucket, assignee_id, leads, forecast_profit," \
	" won_profit, open_leads, open_forecast_profit) VALUES ($1, $2, $3, $4, $5, $6, $7)"

static SPIPlanPtr delta_plan = NULL;
static SPIPlanPtr truncate_plan = NULL;

/*
 * The sums of one statement.  Every addition of numerics leaves the old
 * sum behind as garbage in "sums"; every SUMS_KEPT_ROWS rows the live sums
 * move to a fresh context, so memory stays bounded by the number of groups
 * however many rows the statement changed.
 */
typedef struct TotalsState
{
	HTAB	   *deltas;			/* of TotalsDelta, in the caller's context */
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
	HASH_SEQ_STATUS seq;
	TotalsDelta *delta;

	hash_seq_init(&seq, state->deltas);
	while ((delta = hash_seq_search(&seq)) != NULL)
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

	memset(&key, 0, sizeof(key));	/* hashed as bytes: padding included */
	d = slot_getattr(slot, attnums[TCOL_CREATED_AT], &isnull);
	key.bucket = isnull ? 0 : total_bucket(DatumGetTimestampTz(d));
	d = slot_getattr(slot, attnums[TCOL_ASSIGNEE_ID], &isnull);
	key.assignee_id = isnull ? 0 : DatumGetInt32(d);

	delta = hash_search(state->deltas, &key, HASH_ENTER, &found);
	if (!found)
		memset((char *) delta + sizeof(TotalsKey), 0,
			   sizeof(TotalsDelta) - sizeof(TotalsKey));

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

/*
 * Adds the rows of a transition table, each counted sign times.  Reads
 * through a read pointer of its own, as a scan of the table by name would,
 * so that other triggers still see all of it.
 */
static void
add_transition_table(TotalsState *state, Tuplestorestate *table, TupleDesc desc,
					 const int *attnums, int sign)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			readptr = tuplestore_alloc_read_pointer(table, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(table, readptr);
	tuplestore_rescan(table);
	while (tuplestore_gettupleslot(table, true, false, slot))
		add_row(state, slot, attnums, sign);
	tuplestore_select_read_pointer(table, 0);
	ExecDropSingleTupleTableSlot(slot);
}

/* Appends the deltas that change something */
static void
write_deltas(HTAB *deltas)
{
	Oid			argtypes[7] = {TIMESTAMPTZOID, INT4OID, INT8OID, NUMERICOID,
	NUMERICOID, INT8OID, NUMERICOID};
	SPIPlanPtr	plan = keep_plan(&delta_plan, DELTA_SQL, 7, argtypes);
	Datum		zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	HASH_SEQ_STATUS seq;
	TotalsDelta *delta;

	hash_seq_init(&seq, deltas);
	while ((delta = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[7];
		int			rc;

		if (delta->leads == 0 && delta->open_leads == 0 &&
			numeric_sum_is_zero(delta->forecast_profit, zero) &&
			numeric_sum_is_zero(delta->won_profit, zero) &&
			numeric_sum_is_zero(delta->open_forecast_profit, zero))
			continue;
		values[0] = TimestampTzGetDatum(delta->key.bucket);
		values[1] = Int32GetDatum(delta->key.assignee_id);
		values[2] = Int64GetDatum(delta->leads);
		values[3] = delta->forecast_profit ? delta->forecast_profit : zero;
		values[4] = delta->won_profit ? delta->won_profit : zero;
		values[5] = Int64GetDatum(delta->open_leads);
		values[6] = delta->open_forecast_profit ? delta->open_forecast_profit : zero;
		rc = SPI_execute_plan(plan, values, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "lead totals: %s", SPI_result_code_string(rc));
	}
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
	int			attnums[NUM_TOTALS_COLUMNS];
	HASHCTL		ctl;
	TotalsState state;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("lead_totals_trigger() must be fired AFTER ... FOR EACH STATEMENT")));
	event = trigdata->tg_event;
	rel = trigdata->tg_relation;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
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

	for (i = 0; i < NUM_TOTALS_COLUMNS; i++)
	{
		attnums[i] = SPI_fnumber(RelationGetDescr(rel), totals_column_names[i]);
		if (attnums[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("lead totals trigger on table \"%s\" needs column \"%s\"",
							RelationGetRelationName(rel), totals_column_names[i])));
	}

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TotalsKey);
	ctl.entrysize = sizeof(TotalsDelta);
	ctl.hcxt = CurrentMemoryContext;
	state.deltas = hash_create("lead totals deltas", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
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
	SPI_finish();
	return PointerGetDatum(NULL);
}
