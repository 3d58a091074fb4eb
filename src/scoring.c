/*-------------------------------------------------------------------------
 *
 * scoring.c
 *		Module entry point of the scoring extension, and its clock.
 *
 * Registers the cache invalidation and transaction callbacks of the other
 * modules, keeps their prepared SPI plans, reads the transition tables
 * of their statement triggers, and defines the setting
 * scoring.now: the moment routing takes for now.  Empty (the default)
 * means the transaction's start, as now() does; a timestamp lets tests
 * and replays move time.  dispatch(now) sets it for the leads it routes.
 * The extension may be loaded on first use: shared_preload_libraries is
 * not required.  Preloaded, it keeps the client histories its single-row
 * leads counted, with 3 MB of shared memory that tells the backends which
 * changed (history_cache.c).
 *
 * IDENTIFICATION
 *		src/scoring.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "scoring.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Set by dispatch(now) while it routes */
TimestampTz scoring_now_override = 0;
bool		scoring_now_overridden = false;

/* The scoring.now setting, as text and as parsed by its check hook */
static char *now_setting = NULL;
static TimestampTz now_value = 0;
static bool now_set = false;

/* Checks that scoring.now is empty or a timestamp */
static bool
check_now(char **newval, void **extra, GucSource source)
{
	TimestampTz *ts;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* GUC check hooks hand back malloc'd extra data */
	ts = malloc(sizeof(TimestampTz));
	if (ts == NULL)
		return false;
	*ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												  CStringGetDatum(*newval),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	if (TIMESTAMP_NOT_FINITE(*ts))
	{
		free(ts);
		GUC_check_errdetail("scoring.now must be a finite timestamp, or empty.");
		return false;
	}
	*extra = ts;
	return true;
}

/* Keeps the parsed value of scoring.now */
static void
assign_now(const char *newval, void *extra)
{
	now_set = extra != NULL;
	now_value = extra ? *(TimestampTz *) extra : 0;
}

/*
 * The moment routing takes for now: dispatch's now while it routes, else
 * scoring.now when set, else the start of the transaction.
 */
TimestampTz
scoring_now(void)
{
	if (scoring_now_overridden)
		return scoring_now_override;
	if (now_set)
		return now_value;
	return GetCurrentTransactionStartTimestamp();
}

PG_FUNCTION_INFO_V1(scoring_clock);

/* scoring.clock(): scoring_now() for SQL */
Datum
scoring_clock(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(scoring_now());
}

/*
 * Prepares the plan of sql on first use and keeps it for the backend's
 * life in *plan: the SPI queries of the triggers and of routing.
 */
SPIPlanPtr
keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "could not keep the plan of \"%s\"", sql);
		*plan = p;
	}
	return *plan;
}

/*
 * The number of a column of a trigger's table, complaining when the table
 * has none of that name: trigger names the trigger in the message.
 */
AttrNumber
trigger_column(Relation rel, const char *trigger, const char *column)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s on table \"%s\" needs column \"%s\"",
						trigger, RelationGetRelationName(rel), column)));
	return (AttrNumber) attnum;
}

/*
 * Calls fn for each row of a statement trigger's transition table.  Reads
 * through a read pointer of its own, as a scan of the table by name would,
 * so that the other triggers of the statement still see all of it.
 */
void
transition_table_foreach(Tuplestorestate *table, TupleDesc desc,
						 void (*fn) (TupleTableSlot *slot, void *arg), void *arg)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			readptr = tuplestore_alloc_read_pointer(table, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(table, readptr);
	tuplestore_rescan(table);
	while (tuplestore_gettupleslot(table, true, false, slot))
		fn(slot, arg);
	tuplestore_select_read_pointer(table, 0);
	ExecDropSingleTupleTableSlot(slot);
}

/* Module load */
void
_PG_init(void)
{
	DefineCustomStringVariable("scoring.now",
							   "The moment routing takes for now.",
							   "Empty means the start of the transaction; set a timestamp to replay or test.",
							   &now_setting,
							   "",
							   PGC_USERSET,
							   0,
							   check_now, assign_now, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("scoring");
#else
	EmitWarningsOnPlaceholders("scoring");
#endif

	scoring_cache_init();
	client_init();
	client_cache_init();
	visible_init();
	history_cache_init();
	lead_trigger_init();
	route_init();
	totals_init();
}
