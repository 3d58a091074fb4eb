/*-------------------------------------------------------------------------
 *
 * route.c
 *		Routing: the right present manager gets each ready lead.
 *
 * A lead that becomes ready ('new') is routed by the lead trigger:
 *
 *	1. priority 5 goes to automation ('auto'), never to a person;
 *	2. the first route (scoring.routes, in position order) whose condition
 *	   matches names the tier and required skill;
 *	3. of the managers of that tier with that skill, those who are active,
 *	   present (on a call, or active within presence_timeout, and neither
 *	   away nor offline), on shift and not within shift_guard of lunch or of
 *	   the end of the shift in their own time zone, below their open-lead
 *	   cap and not among those who let this lead lapse are eligible;
 *	4. the least loaded of them in their own working day (leads, or
 *	   expected profit, by balance_by) gets it; ties are broken by a hash of
 *	   lead and manager, uniform and reproducible.
 *
 * Loads live in scoring.manager_load, one row per manager.  The chosen
 * manager's row is locked FOR UPDATE SKIP LOCKED, so concurrent inserts
 * racing for the same manager take the next one instead of waiting, and
 * the lead trigger updates the counters under that lock: counts stay
 * exact without one lock for all inserts.  Only a transaction that holds
 * no load row yet waits for a busy one, so no cycle of waits (deadlock)
 * can form; otherwise the lead is queued for dispatch().
 *
 * Every decision goes to scoring.assignment_log with the candidates,
 * their loads and why the others were excluded.
 *
 * IDENTIFICATION
 *		src/route.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include <math.h>
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "scoring.h"

PG_FUNCTION_INFO_V1(scoring_dispatch);
PG_FUNCTION_INFO_V1(scoring_time_zone_valid);

/* A manager of the route's tier, with what routing needs to know */
typedef struct Candidate
{
	int32		manager_id;
	const char *excluded;		/* why not eligible, NULL when eligible */
	int32		open_leads;
	int32		max_open_leads; /* -1: no cap */
	double		load;			/* leads or expected profit today */
	uint32		tie;			/* tie-break */
} Candidate;

/* The saved plans of this module */
static SPIPlanPtr CandidatesPlan = NULL;
static SPIPlanPtr LockPlan = NULL;
static SPIPlanPtr LockWaitPlan = NULL;
static SPIPlanPtr LogPlan = NULL;
static SPIPlanPtr LoadPlan = NULL;

/* Whether this transaction holds a manager_load row lock */
static bool HoldsLoadLock = false;

/*
 * While dispatch() routes a batch, load changes are kept here and written
 * once at its end: thousands of updates of the same few manager_load rows
 * in one transaction would leave a chain of dead versions that every later
 * read walks.  The chosen manager's row is still locked for each lead.
 */
typedef struct PendingLoad
{
	int32		manager_id;
	int			open;
	int			received;
	double		profit;
} PendingLoad;

static bool DeferLoads = false;
static PendingLoad *Pending = NULL;
static int	NPending = 0;
static int	PendingCap = 0;

/* The pending changes of a manager, added when absent if add */
static PendingLoad *
pending_load(int32 manager_id, bool add)
{
	int			i;

	for (i = 0; i < NPending; i++)
		if (Pending[i].manager_id == manager_id)
			return &Pending[i];
	if (!add)
		return NULL;
	if (NPending == PendingCap)
	{
		PendingCap = Max(PendingCap * 2, 16);
		Pending = Pending ?
			repalloc(Pending, sizeof(PendingLoad) * PendingCap) :
			MemoryContextAlloc(TopTransactionContext, sizeof(PendingLoad) * PendingCap);
	}
	memset(&Pending[NPending], 0, sizeof(PendingLoad));
	Pending[NPending].manager_id = manager_id;
	return &Pending[NPending++];
}

/* Forgets the load lock at the end of the transaction */
static void
route_xact_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		HoldsLoadLock = false;
		DeferLoads = false;
		Pending = NULL;			/* lived in TopTransactionContext */
		NPending = PendingCap = 0;
	}
}

/* Registers the transaction callback; called from _PG_init */
void
route_init(void)
{
	RegisterXactCallback(route_xact_end, NULL);
}

/*
 * scoring.time_zone_valid(text): the CHECK constraint on a manager's time
 * zone, so that a typo fails when the manager is stored, not when a lead
 * is routed.
 */
Datum
scoring_time_zone_valid(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (name[0] == '\0' || pg_tzset(name) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not recognized", name),
				 errhint("Use a name from pg_timezone_names, such as Europe/Moscow.")));
	PG_RETURN_BOOL(true);
}

/* ----------------------------------------------------------------
 * Eligibility
 * ----------------------------------------------------------------
 */

/* Whether time of day t is in [a, b), the window possibly crossing midnight */
static bool
in_window(TimeADT t, TimeADT a, TimeADT b)
{
	return a <= b ? (a <= t && t < b) : (t >= a || t < b);
}

/* Time from t to the next b, across midnight if need be */
static TimeADT
time_until(TimeADT t, TimeADT b)
{
	return (b - t + USECS_PER_DAY) % USECS_PER_DAY;
}

/*
 * Why a manager cannot take a lead now, from the columns of the
 * candidates query; NULL when the manager can.
 */
static const char *
exclusion(HeapTuple tup, TupleDesc desc, const RouteRequest *req,
		  const ScoringConfig *config, Candidate *c)
{
	bool		isnull,
				on_call,
				lunch_null;
	Datum		d;
	TimeADT		now_local,
				shift_start,
				shift_end,
				lunch_start,
				lunch_end;
	TimestampTz last_activity;
	char	   *status;

	if (!DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)))
		return "inactive";
	if (req->lapsed != NULL)
	{
		int			i;

		for (i = 0; i < req->nlapsed; i++)
			if (req->lapsed[i] == c->manager_id)
				return "lapsed";
	}

	/* presence: on a call, or active recently, and not away or offline */
	status = SPI_getvalue(tup, desc, 11);
	if (status == NULL)
		return "never_seen";
	if (strcmp(status, "online") != 0)
		return strcmp(status, "away") == 0 ? "away" : "offline";
	d = SPI_getbinval(tup, desc, 9, &isnull);
	on_call = !isnull && DatumGetBool(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	last_activity = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	if (!on_call && last_activity < req->now - config->presence_timeout)
		return "not_present";

	/* the shift and lunch, in the manager's own time zone */
	now_local = DatumGetTimeADT(SPI_getbinval(tup, desc, 4, &isnull));
	shift_start = DatumGetTimeADT(SPI_getbinval(tup, desc, 5, &isnull));
	shift_end = DatumGetTimeADT(SPI_getbinval(tup, desc, 6, &isnull));
	if (!in_window(now_local, shift_start, shift_end))
		return "off_shift";
	if (time_until(now_local, shift_end) <= config->shift_guard)
		return "shift_ending";
	lunch_start = DatumGetTimeADT(SPI_getbinval(tup, desc, 7, &lunch_null));
	lunch_end = DatumGetTimeADT(SPI_getbinval(tup, desc, 8, &isnull));
	if (!lunch_null &&
		in_window(now_local,
				  (lunch_start - config->shift_guard + USECS_PER_DAY) % USECS_PER_DAY,
				  lunch_end))
		return "lunch";

	if (c->max_open_leads >= 0 && c->open_leads >= c->max_open_leads)
		return "at_cap";
	return NULL;
}

/* Orders eligible candidates: least loaded first, then by the tie-break */
static int
candidate_cmp(const void *a, const void *b)
{
	const Candidate *x = (const Candidate *) a;
	const Candidate *y = (const Candidate *) b;

	if (x->load != y->load)
		return x->load < y->load ? -1 : 1;
	return (x->tie > y->tie) - (x->tie < y->tie);
}

/* ----------------------------------------------------------------
 * The decision
 * ----------------------------------------------------------------
 */

/* The first route whose condition matches, NULL when none does */
static const RouteRule *
match_route(const ScoringConfig *config, const RouteRequest *req)
{
	int			i;

	for (i = 0; i < config->nroutes; i++)
		if (condition_eval(config->routes[i].condition, req->lookup, req->ctx))
			return &config->routes[i];
	return NULL;
}

/*
 * Reads the managers of a route with presence and load, decides who is
 * eligible and appends each to the log's candidates.  Returns the
 * candidates, eligible ones first in order of preference.
 */
static Candidate *
read_candidates(const RouteRule *route, const RouteRequest *req,
				const ScoringConfig *config, int *ncand, int *neligible,
				StringInfo log)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	Candidate  *cand;
	uint64		i;
	int			n = 0;

	args[0] = route->tier ? CStringGetTextDatum(route->tier) : (Datum) 0;
	nulls[0] = route->tier ? ' ' : 'n';
	args[1] = route->skill ? CStringGetTextDatum(route->skill) : (Datum) 0;
	nulls[1] = route->skill ? ' ' : 'n';
	args[2] = TimestampTzGetDatum(req->now);

	keep_plan(&CandidatesPlan,
			  "SELECT m.manager_id, m.active, coalesce(m.max_open_leads, -1),"
			  "       (($3 AT TIME ZONE m.time_zone))::time,"
			  "       m.shift_start, m.shift_end, m.lunch_start, m.lunch_end,"
			  "       p.on_call, p.last_activity, p.status,"
			  "       coalesce(l.open_leads, 0),"
			  "       CASE WHEN l.day = scoring.working_day(m.time_zone, m.shift_start,"
			  "                                             m.shift_end, $3)"
			  "            THEN l.day_leads ELSE 0 END,"
			  "       CASE WHEN l.day = scoring.working_day(m.time_zone, m.shift_start,"
			  "                                             m.shift_end, $3)"
			  "            THEN l.day_profit ELSE 0 END::float8"
			  "  FROM scoring.manager m"
			  "  LEFT JOIN scoring.presence p USING (manager_id)"
			  "  LEFT JOIN scoring.manager_load l USING (manager_id)"
			  " WHERE ($1::text IS NULL OR m.tier = $1)"
			  "   AND ($2::text IS NULL OR $2 = ANY (m.skills))"
			  " ORDER BY m.manager_id",
			  3, argtypes);
	if (SPI_execute_plan(CandidatesPlan, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the candidates");

	cand = palloc(sizeof(Candidate) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Candidate  *c = &cand[n++];
		PendingLoad *pending;
		bool		isnull;
		uint64		key[2];

		c->manager_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		c->max_open_leads = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		c->open_leads = DatumGetInt32(SPI_getbinval(tup, desc, 12, &isnull));
		c->load = config->balance_by_profit ?
			DatumGetFloat8(SPI_getbinval(tup, desc, 14, &isnull)) :
			(double) DatumGetInt32(SPI_getbinval(tup, desc, 13, &isnull));
		if ((pending = pending_load(c->manager_id, false)) != NULL)
		{
			c->open_leads += pending->open;
			c->load += config->balance_by_profit ? pending->profit : pending->received;
		}
		key[0] = (uint64) req->lead_id;
		key[1] = (uint64) c->manager_id;
		c->tie = hash_bytes((const unsigned char *) key, sizeof(key));
		c->excluded = exclusion(tup, desc, req, config, c);

		appendStringInfo(log, "%s{\"manager_id\": %d", i ? ", " : "", c->manager_id);
		if (c->excluded)
			appendStringInfo(log, ", \"excluded\": \"%s\"}", c->excluded);
		else
			appendStringInfo(log, ", \"load\": %.2f, \"open\": %d}", c->load,
							 c->open_leads);
	}

	/* eligible first, least loaded first */
	*neligible = 0;
	for (i = 0; i < (uint64) n; i++)
		if (cand[i].excluded == NULL)
			cand[(*neligible)++] = cand[i];
	qsort(cand, *neligible, sizeof(Candidate), candidate_cmp);
	*ncand = n;
	return cand;
}

/*
 * Locks the load row of a candidate when it is free and still below its
 * cap; with wait, waits for it instead of skipping it.
 */
static bool
lock_manager(const Candidate *c, bool wait)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	PendingLoad *pending = pending_load(c->manager_id, false);
	int32		cap = c->max_open_leads;
	Datum		args[2];
	SPIPlanPtr	plan;

	/* the table does not hold what this dispatch gave out yet */
	if (cap >= 0 && pending != NULL)
		cap = Max(cap - pending->open, 0);
	args[0] = Int32GetDatum(c->manager_id);
	args[1] = Int32GetDatum(cap);

	plan = wait ?
		keep_plan(&LockWaitPlan,
				  "SELECT 1 FROM scoring.manager_load"
				  " WHERE manager_id = $1 AND ($2 < 0 OR open_leads < $2)"
				  "   FOR UPDATE",
				  2, argtypes) :
		keep_plan(&LockPlan,
				  "SELECT 1 FROM scoring.manager_load"
				  " WHERE manager_id = $1 AND ($2 < 0 OR open_leads < $2)"
				  "   FOR UPDATE SKIP LOCKED",
				  2, argtypes);
	if (SPI_execute_plan(plan, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the load of manager %d", c->manager_id);
	if (SPI_processed == 1)
		HoldsLoadLock = true;
	return SPI_processed == 1;
}

/* Writes a routing decision to scoring.assignment_log */
static void
log_decision(const RouteRequest *req, const char *event, int32 manager_id,
			 const RouteRule *route, const char *candidates, const char *reason)
{
	Oid			argtypes[9] = {INT8OID, TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID,
	TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		args[9];
	char		nulls[9] = "         ";

	args[0] = Int64GetDatum(req->lead_id);
	args[1] = TimestampTzGetDatum(req->now);
	args[2] = CStringGetTextDatum(event);
	args[3] = Int32GetDatum(manager_id);
	nulls[3] = manager_id ? ' ' : 'n';
	args[4] = Int32GetDatum(route ? route->position : 0);
	nulls[4] = route ? ' ' : 'n';
	args[5] = route && route->tier ? CStringGetTextDatum(route->tier) : (Datum) 0;
	nulls[5] = route && route->tier ? ' ' : 'n';
	args[6] = route && route->skill ? CStringGetTextDatum(route->skill) : (Datum) 0;
	nulls[6] = route && route->skill ? ' ' : 'n';
	args[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(candidates));
	args[8] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[8] = reason ? ' ' : 'n';

	keep_plan(&LogPlan,
			  "INSERT INTO scoring.assignment_log (lead_id, at, event, manager_id,"
			  " route_position, tier, required_skill, candidates, reason)"
			  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			  9, argtypes);
	if (SPI_execute_plan(LogPlan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the assignment log");
}

/*
 * Routes a ready lead: fills res with the new status and, when assigned,
 * the manager.  The caller is connected to SPI.
 */
void
route_lead(const RouteRequest *req, const ScoringConfig *config, RouteResult *res)
{
	const RouteRule *route;
	Candidate  *cand;
	int			ncand,
				neligible,
				i;
	StringInfoData log;

	memset(res, 0, sizeof(RouteResult));
	if (req->priority == 5)
	{
		res->status = "auto";
		log_decision(req, "auto", 0, NULL, "[]", "priority 5: automation only");
		return;
	}

	route = match_route(config, req);
	if (route == NULL)
	{
		res->status = "queued";
		res->flag = "no_route";
		if (!req->requeue)
			log_decision(req, "queued", 0, NULL, "[]", "no route matches the lead");
		return;
	}

	initStringInfo(&log);
	appendStringInfoChar(&log, '[');
	cand = read_candidates(route, req, config, &ncand, &neligible, &log);
	appendStringInfoChar(&log, ']');

	for (i = 0; i < neligible && res->manager_id == 0; i++)
		if (lock_manager(&cand[i], false))
			res->manager_id = cand[i].manager_id;

	/*
	 * All busy: wait for the best one, but only for a new lead in a
	 * transaction that holds no load row yet.  An update holds the lead's
	 * row, which the holder of the load row may want next (a CRM closing
	 * leads, say): waiting could close a cycle.
	 */
	if (res->manager_id == 0 && neligible > 0 && req->may_wait && !HoldsLoadLock &&
		lock_manager(&cand[0], true))
		res->manager_id = cand[0].manager_id;

	if (res->manager_id != 0)
	{
		res->status = "assigned";
		log_decision(req, req->reassign ? "reassigned" : "assigned",
					 res->manager_id, route, log.data, NULL);
		return;
	}

	res->status = "queued";
	if (!req->requeue)
		log_decision(req, "queued", 0, route, log.data,
					 ncand == 0 ? "no manager of this tier and skill" :
					 neligible == 0 ? "nobody eligible now" :
					 "every eligible manager is busy or at the cap");
}

/* Writes load changes to manager_load */
static void
write_load(int32 manager_id, int open_delta, int received, Numeric profit,
		   TimestampTz now)
{
	Oid			argtypes[5] = {INT4OID, INT4OID, INT4OID, NUMERICOID, TIMESTAMPTZOID};
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = Int32GetDatum(manager_id);
	args[1] = Int32GetDatum(open_delta);
	args[2] = Int32GetDatum(received);
	args[3] = profit ? NumericGetDatum(profit) : (Datum) 0;
	nulls[3] = profit ? ' ' : 'n';
	args[4] = TimestampTzGetDatum(now);

	keep_plan(&LoadPlan,
			  "INSERT INTO scoring.manager_load AS l"
			  "       (manager_id, open_leads, day, day_leads, day_profit)"
			  " SELECT m.manager_id, greatest($2, 0), w.day, $3, coalesce($4, 0)"
			  "   FROM scoring.manager m,"
			  "        LATERAL scoring.working_day(m.time_zone, m.shift_start,"
			  "                                    m.shift_end, $5) AS w(day)"
			  "  WHERE m.manager_id = $1"
			  " ON CONFLICT (manager_id) DO UPDATE SET"
			  "   open_leads = greatest(l.open_leads + $2, 0),"
			  "   day = CASE WHEN $3 = 0 THEN l.day ELSE excluded.day END,"
			  "   day_leads = CASE WHEN $3 = 0 THEN l.day_leads"
			  "                    WHEN l.day = excluded.day THEN l.day_leads + $3"
			  "                    ELSE $3 END,"
			  "   day_profit = CASE WHEN $3 = 0 THEN l.day_profit"
			  "                     WHEN l.day = excluded.day"
			  "                     THEN l.day_profit + excluded.day_profit"
			  "                     ELSE excluded.day_profit END",
			  5, argtypes);
	if (SPI_execute_plan(LoadPlan, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update the load of manager %d", manager_id);
	if (SPI_processed > 0)
		HoldsLoadLock = true;
}

/*
 * Moves a manager's counters: open_delta to the open leads, and with
 * received, one more lead (and its profit) in the manager's working day at
 * now.  Managers that do not exist are left alone: a lead never fails
 * because of its assignee.  During dispatch() the change waits in memory.
 */
void
manager_load_adjust(int32 manager_id, int open_delta, bool received,
					Numeric profit, TimestampTz now)
{
	if (DeferLoads)
	{
		PendingLoad *p = pending_load(manager_id, true);

		p->open += open_delta;
		if (received)
		{
			double		d = 0;

			p->received++;
			if (profit != NULL && numeric_to_finite_double(profit, &d))
				p->profit += d;
		}
		return;
	}
	write_load(manager_id, open_delta, received ? 1 : 0, received ? profit : NULL,
			   now);
}

/* Orders pending loads by manager */
static int
pending_cmp(const void *a, const void *b)
{
	int32		x = ((const PendingLoad *) a)->manager_id;
	int32		y = ((const PendingLoad *) b)->manager_id;

	return (x > y) - (x < y);
}

/*
 * Writes what a dispatch kept in memory, in manager order: the order in
 * which every writer of several load rows takes them, so that none waits
 * in a circle.
 */
static void
flush_loads(TimestampTz now)
{
	int			i;

	DeferLoads = false;
	if (NPending > 1)
		qsort(Pending, NPending, sizeof(PendingLoad), pending_cmp);
	for (i = 0; i < NPending; i++)
	{
		PendingLoad *p = &Pending[i];

		if (p->open != 0 || p->received != 0)
			write_load(p->manager_id, p->open, p->received,
					   DatumGetNumeric(DirectFunctionCall1(float8_numeric,
														   Float8GetDatum(round(p->profit * 100) / 100))),
					   now);
	}
	NPending = 0;
}

/* ----------------------------------------------------------------
 * dispatch(now)
 * ----------------------------------------------------------------
 */

/*
 * Marks leads ready again in the order select_sql gives them, so that the
 * lead trigger routes each; returns how many got a manager.  One UPDATE
 * over an array of ids: a statement per lead cost more in executor
 * start-up than the routing itself.  The join is kept a nested loop over
 * the array, so rows are updated, and routed, in the array's order.
 */
static int
requeue(const char *select_sql, const char *update_sql, TimestampTz now,
		Datum interval_arg)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, FLOAT8OID};
	Datum		args[2] = {TimestampTzGetDatum(now), interval_arg};
	Oid			uargtypes[1] = {INT8ARRAYOID};
	Datum		uargs[1];
	Datum	   *ids;
	uint64		n,
				i;
	int			placed = 0,
				nestlevel;

	if (SPI_execute_with_args(select_sql, 2, argtypes, args, NULL, false, 0) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not read the leads to dispatch");
	n = SPI_processed;
	if (n == 0)
		return 0;
	ids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1,
							   &isnull);
	}
	uargs[0] = PointerGetDatum(construct_array(ids, (int) n, INT8OID, 8,
											   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_execute_with_args(update_sql, 1, uargtypes, uargs, NULL, false, 0) !=
		SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not dispatch the leads");
	AtEOXact_GUC(true, nestlevel);

	for (i = 0; i < SPI_processed; i++)
		if (strcmp(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
				   "assigned") == 0)
			placed++;
	return placed;
}

/*
 * scoring.dispatch(now): first moves leads not accepted within
 * accept_timeout to someone else (never back to whoever let them lapse),
 * then places queued leads, priority first, oldest first.  Leads another
 * dispatch is working on are skipped.  Returns how many got a manager.
 */
Datum
scoring_dispatch(PG_FUNCTION_ARGS)
{
	TimestampTz now = PG_ARGISNULL(0) ? GetCurrentTransactionStartTimestamp() :
		PG_GETARG_TIMESTAMPTZ(0);
	ScoringConfig *config;
	volatile int placed = 0;
	TimestampTz saved = scoring_now_override;
	bool		saved_set = scoring_now_overridden;

	SPI_connect();
	config = scoring_config();
	scoring_now_override = now;
	scoring_now_overridden = true;
	DeferLoads = true;
	NPending = 0;
	PG_TRY();
	{
		placed = requeue("SELECT lead_id FROM scoring.lead"
						 " WHERE status = 'assigned'"
						 "   AND assigned_at < $1 - make_interval(secs => $2)"
						 " ORDER BY assigned_at FOR UPDATE SKIP LOCKED",
						 "UPDATE scoring.lead l"
						 "   SET status = 'new', lapsed_ids = l.lapsed_ids || l.assignee_id,"
						 "       assignee_id = NULL"
						 "  FROM unnest($1::int8[]) WITH ORDINALITY AS u(id, n)"
						 " WHERE l.lead_id = u.id RETURNING l.status",
						 now, Float8GetDatum(config->accept_timeout / 1e6));
		placed += requeue("SELECT lead_id FROM scoring.lead"
						  " WHERE status = 'queued' AND $1 IS NOT NULL AND $2 IS NOT NULL"
						  " ORDER BY priority, created_at FOR UPDATE SKIP LOCKED",
						  "UPDATE scoring.lead l SET status = 'new'"
						  "  FROM unnest($1::int8[]) WITH ORDINALITY AS u(id, n)"
						  " WHERE l.lead_id = u.id RETURNING l.status",
						  now, Float8GetDatum(0));
		flush_loads(now);
	}
	PG_FINALLY();
	{
		scoring_now_override = saved;
		scoring_now_overridden = saved_set;
		DeferLoads = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT32(placed);
}
