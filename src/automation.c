/*-------------------------------------------------------------------------
 *
 * automation.c
 *		The statement trigger that hands inserted leads to automation: a
 *		lead inserted refused or handed to automation ('auto') starts its
 *		follow-up chain.
 *
 * A row trigger with WHEN (NEW.status IN ('auto', 'refused')) would say
 * the same, but PostgreSQL parses a trigger's WHEN clause again for every
 * statement, and in a single-row INSERT that cost more than the rest of
 * the trigger's work.  This trigger reads the statement's transition
 * table instead, which the totals trigger has PostgreSQL keep anyway, and
 * calls scoring.start_automation() only for the rows that need it, in the
 * order they were inserted.
 *
 * IDENTIFICATION
 *		src/automation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "scoring.h"

#define START_SQL \
	"SELECT scoring.start_automation(l) FROM scoring.lead l WHERE l.lead_id = $1"

static SPIPlanPtr start_plan = NULL;

/* Whether a status datum is 'auto' or 'refused' */
static bool
status_automated(Datum status)
{
	text	   *t = DatumGetTextPP(status);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	return (len == 4 && memcmp(s, "auto", 4) == 0) ||
		(len == 7 && memcmp(s, "refused", 7) == 0);
}

/* The columns the trigger reads, and the leads it found */
typedef struct AutomationScan
{
	AttrNumber	lead_id;
	AttrNumber	status;
	int64	   *lead_ids;
	int			n;
	int			cap;
} AutomationScan;

/* Notes a row of the transition table when its lead is automated */
static void
note_row(TupleTableSlot *slot, void *arg)
{
	AutomationScan *scan = (AutomationScan *) arg;
	bool		isnull;
	Datum		status = slot_getattr(slot, scan->status, &isnull);
	Datum		lead_id;

	if (isnull || !status_automated(status))
		return;
	lead_id = slot_getattr(slot, scan->lead_id, &isnull);
	if (isnull)
		return;
	if (scan->n == scan->cap)
	{
		scan->cap = scan->cap == 0 ? 8 : scan->cap * 2;
		scan->lead_ids = scan->lead_ids == NULL ?
			palloc(sizeof(int64) * scan->cap) :
			repalloc(scan->lead_ids, sizeof(int64) * scan->cap);
	}
	scan->lead_ids[scan->n++] = DatumGetInt64(lead_id);
}

PG_FUNCTION_INFO_V1(scoring_lead_automation_inserted);

/*
 * AFTER INSERT ... REFERENCING NEW TABLE ... FOR EACH STATEMENT on
 * scoring.lead: starts the chain of each inserted lead that is refused or
 * handed to automation.
 */
Datum
scoring_lead_automation_inserted(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	AutomationScan scan;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("lead_automation_inserted() must be fired AFTER INSERT ... REFERENCING NEW TABLE ... FOR EACH STATEMENT")));

	scan.lead_id = trigger_column(trigdata->tg_relation,
								  "lead automation trigger", "lead_id");
	scan.status = trigger_column(trigdata->tg_relation,
								 "lead automation trigger", "status");
	scan.lead_ids = NULL;
	scan.n = scan.cap = 0;
	transition_table_foreach(trigdata->tg_newtable,
							 RelationGetDescr(trigdata->tg_relation),
							 note_row, &scan);
	if (scan.n == 0)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < scan.n; i++)
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		args[1] = {Int64GetDatum(scan.lead_ids[i])};
		int			rc;

		rc = SPI_execute_plan(keep_plan(&start_plan, START_SQL, 1, argtypes),
							  args, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "lead automation: %s", SPI_result_code_string(rc));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
