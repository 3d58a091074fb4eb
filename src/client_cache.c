/*-------------------------------------------------------------------------
 *
 * client_cache.c
 *		This backend's copy of the clients' scoring attributes.
 *
 * Every lead with a client needs the client's kind, industry, okved, core
 * industry and turnover.  Clients change rarely and a busy client sends
 * many leads, so the lead trigger keeps what it read of each client in a
 * hash in a long-lived memory context instead of reading the row again:
 * an index scan of client_pkey, a heap fetch and two more relation locks,
 * a tenth of what scoring adds to a single-row insert.
 *
 * The copy is dropped, all of it, whenever it could be wrong:
 *
 *	- a client's scoring attributes or id change, or a client is deleted:
 *	  triggers on scoring.client (scoring.client_changed, enabled ALWAYS,
 *	  so logical replication's apply fires them too) send a relcache
 *	  invalidation for scoring.client, which every backend receives when
 *	  the change commits, this one at its next command, and again if the
 *	  change is rolled back.  TRUNCATE and DDL invalidate it by themselves.
 *	  The lead trigger accepts invalidations before each lookup, so a lead
 *	  sees a change another session committed before the lead's statement,
 *	  as a fresh read would, even inside a transaction that holds every
 *	  lock it needs already;
 *	- a (sub)transaction that added entries rolls back, or is prepared: an
 *	  entry may hold a client it inserted itself, and no trigger fires for
 *	  inserts;
 *	- it grows past CLIENT_CACHE_MAX clients.
 *
 * Only clients that exist are kept: a lead of a client scoring.client does
 * not know (yet) reads again, and finds the client once it is there.  A
 * miss reads with a snapshot taken after the invalidations were accepted,
 * and what it read is not kept when an invalidation came in meanwhile, so
 * nothing kept is older than an invalidation already consumed.  The
 * callback only marks the copy stale; it is dropped at the next lookup,
 * never while a lead holds what it returned (lookups return copies anyway).
 *
 * IDENTIFICATION
 *		src/client_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "scoring.h"

/*
 * At most this many clients (a few MB); past it the copy starts again, so
 * that a backend that scored a million clients once does not keep them
 */
#define CLIENT_CACHE_MAX	16384

/* A client's scoring attributes, in CacheContext */
typedef struct CachedClient
{
	int64		client_id;
	char		status;			/* for simplehash */
	LeadInput	client;			/* its has_client and client_* fields */
} CachedClient;

#define SH_PREFIX		clients
#define SH_ELEMENT_TYPE CachedClient
#define SH_KEY			client_id
#include "idhash.h"

static MemoryContext CacheContext = NULL;
static clients_hash *Cache = NULL;

/* Whether an invalidation or a rollback asked to drop the copy */
static bool CacheStale = false;

/* Whether this transaction added entries: its rollback drops the copy */
static bool FilledInXact = false;

/* scoring.client's OID: the relation whose invalidation drops the copy */
static Oid	AnchorRelid = InvalidOid;

PG_FUNCTION_INFO_V1(scoring_client_changed);

/* Marks the copy stale when scoring.client (or everything) is invalidated */
static void
client_cache_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == AnchorRelid)
		CacheStale = true;
}

/*
 * A transaction that filled the copy and rolls back drops it; so does one
 * that is prepared, whose fate this backend will not see
 */
static void
client_cache_xact_end(XactEvent event, void *arg)
{
	bool		unsure = event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE;

	if (FilledInXact && unsure)
		CacheStale = true;
	if (unsure || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_COMMIT)
		FilledInXact = false;
}

/* So does a rolled-back subtransaction of a transaction that filled it */
static void
client_cache_subxact_end(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && FilledInXact)
		CacheStale = true;
}

/* Registers the callbacks; called from _PG_init */
void
client_cache_init(void)
{
	CacheRegisterRelcacheCallback(client_cache_invalidate, (Datum) 0);
	RegisterXactCallback(client_cache_xact_end, NULL);
	RegisterSubXactCallback(client_cache_subxact_end, NULL);
}

/* Drops every entry */
static void
client_cache_reset(void)
{
	if (CacheContext != NULL)
		MemoryContextReset(CacheContext);
	Cache = NULL;
	CacheStale = false;
}

/*
 * Fills the client part of lead from the copy and returns true, or returns
 * false when the client is not there.  The strings and the number are
 * copied into the current memory context.
 */
bool
client_cache_get(int64 client_id, LeadInput *lead)
{
	CachedClient *entry;

	if (CacheStale)
		client_cache_reset();
	if (Cache == NULL)
		return false;
	entry = clients_lookup(Cache, client_id);
	if (entry == NULL)
		return false;

	lead_client_copy(lead, &entry->client);
	return true;
}

/*
 * Keeps the client part of lead, just read from client_relid (which must
 * be scoring.client) with a snapshot taken after invalidations were
 * accepted.  A lead without a client is not kept.
 */
void
client_cache_put(Oid client_relid, int64 client_id, const LeadInput *lead)
{
	MemoryContext old;
	CachedClient *entry;
	bool		found;

	if (!lead->has_client)
		return;

	/*
	 * An invalidation that came in while the client was read (taking its
	 * lock may wait for the change's transaction) is for a change the
	 * read's snapshot may not see: keep nothing, and read again next time.
	 */
	if (CacheStale)
	{
		client_cache_reset();
		return;
	}
	if (client_relid != AnchorRelid ||
		(Cache != NULL && Cache->members >= CLIENT_CACHE_MAX))
		client_cache_reset();
	AnchorRelid = client_relid;
	if (CacheContext == NULL)
		CacheContext = AllocSetContextCreate(CacheMemoryContext,
											 "scoring client cache",
											 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(CacheContext);
	if (Cache == NULL)
		Cache = clients_create(CacheContext, 256, NULL);
	entry = clients_insert(Cache, client_id, &found);
	lead_client_copy(&entry->client, lead);
	MemoryContextSwitchTo(old);
	FilledInXact = true;
}

/*
 * Trigger on scoring.client: a client's scoring attributes or id changed,
 * or clients were deleted.  Every backend drops its copy when this
 * transaction commits, this one at its next command.
 */
Datum
scoring_client_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scoring.client_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	PG_RETURN_POINTER(NULL);
}
