/*-------------------------------------------------------------------------
 *
 * history_cache.c
 *		The client histories this backend counted, kept from one lead to
 *		the next when the library is preloaded, and the shared slots that
 *		say what changed since.
 *
 * A single-row insert counts its client's earlier leads and wins with a
 * walk of lead_client_history_idx (client.c): some forty index entries for
 * a busy client, most of what scoring adds to the insert.  Between two
 * leads of a client little changes, a lead or two is added; so a backend
 * keeps what it counted, and learns what others changed without walking:
 *
 *	- an UPDATE or DELETE of leads already makes every backend drop its
 *	  memo of visible leads before its next walk (visible.c).  A kept
 *	  history goes with it: it remembers the memo's generation.
 *	- an INSERT is published in shared memory, which is why this needs
 *	  shared_preload_libraries.  Each client hashes to one of HISTORY_SLOTS
 *	  slots, which holds a mark, the latest created_at published there,
 *	  and a count of bumps.  Before its transaction commits, a backend
 *	  publishes each lead it inserted: a lead created after the slot's
 *	  mark (and not after now) raises the mark, any other bumps the slot.
 *	  Once the transaction has committed, it confirms the lead that raised
 *	  the mark, when nothing was published there since.  A transaction
 *	  that inserted many leads, or leads another BEFORE trigger could still
 *	  change, raises a floor under every mark to its latest created_at (or
 *	  now, if that is earlier) and bumps a global epoch instead.
 *
 * A kept history counts the client's leads created up to a moment upto,
 * the mark its slot had (or the floor) when it was counted, with the
 * closing moments of those won.  It is kept only when the walk found every
 * entry up to upto settled (visible.c: inserted by a committed transaction
 * and neither updated nor deleted) and no entry at all after upto: not
 * one in progress, which will be visible with no further word, nor one
 * created later, which may not have raised the mark.  It then holds while
 * the epoch, its slot's bumps and the memo's generation stay as they were,
 * since every lead inserted from then on raised the mark or bumped.  While
 * the mark is still upto, a lead uses the history as kept; when the one
 * lead published since is confirmed, the history takes it in (when it is
 * the client's) and reaches the new mark, and the backend that inserted
 * it does so at its commit; otherwise the lead walks the entries after
 * upto only, and the history reaches the mark if they qualify.
 *
 * A prepared transaction publishes when it is prepared and never confirms:
 * its leads are walked until COMMIT PREPARED, and counted once visible.
 * A lead inserted while lead_score is disabled is not published; turning
 * the trigger off and on makes every backend drop its histories
 * (relcache invalidation of scoring.lead), and lead_score is not there to
 * use them meanwhile.  Leads inserted with session_replication_role
 * replica, as logical replication's apply inserts them, are published by
 * the lead_inserted_replicated trigger.  A lead committed but not yet
 * visible to a walk is not counted, as a walk a moment earlier would not.
 *
 * Without the shared memory (the library loaded on first use), or in a
 * transaction that has inserted, updated or deleted leads itself, every
 * lead walks its client's whole history, as it always did.
 *
 * IDENTIFICATION
 *		src/history_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "scoring.h"

/* Slots of the shared marks, a power of two: 3 MB */
#define HISTORY_SLOTS		65536

/* At most this many clients kept per backend; past it the cache starts again */
#define HISTORY_CACHE_MAX	16384

/* A transaction publishing more leads than this one by one bumps the epoch */
#define PUBLISH_MAX			1024

/*
 * A slot of the clients that hash to it.  The last raise: the lead that
 * raised the mark from prev, and whether its transaction has committed.
 */
typedef struct HistorySlot
{
	slock_t		mutex;
	bool		confirmed;
	TimestampTz mark;			/* the latest created_at published */
	uint64		bumps;			/* leads published at or before the mark */
	TimestampTz prev;			/* the mark (or floor) before the last raise */
	int64		client_id;		/* the lead of the last raise */
	TimestampTz won_at;
} HistorySlot;

typedef struct HistoryShared
{
	pg_atomic_uint64 epoch;		/* bumped for everything at once */
	pg_atomic_uint64 floor;		/* a TimestampTz under every mark */
	HistorySlot slots[HISTORY_SLOTS];
} HistoryShared;

static HistoryShared *Shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/* A client's kept history, in CacheContext */
typedef struct KeptHistory
{
	int64		client_id;
	char		status;			/* for simplehash */
	HistoryStamp stamp;			/* when it was counted; stamp.upto its moment */
	int64		leads;			/* visible leads created up to stamp.upto */
	int			nwins;
	int			capwins;
	TimestampTz *wins;			/* the closing moments of those won */
} KeptHistory;

#define SH_PREFIX		kept
#define SH_ELEMENT_TYPE KeptHistory
#define SH_KEY			client_id
#include "idhash.h"

static MemoryContext CacheContext = NULL;
static kept_hash *Kept = NULL;
static Oid	KeptRelid = InvalidOid;

/* What the current transaction inserted, to publish before it commits */
typedef struct Published
{
	uint32		slot;
	bool		raised;			/* it raised the mark */
	int64		client_id;
	TimestampTz created_at;
	TimestampTz won_at;			/* closed_at of a won lead, else DT_NOEND */
} Published;

static Published *Pending = NULL;	/* in TopMemoryContext */
static int	NPending = 0;
static bool PendingAll = false; /* publish to everything at once */
static TimestampTz PendingLatest = DT_NOBEGIN;	/* the latest of all */
static Oid	PendingRelid = InvalidOid;	/* the table they went into */

/* Whether the leads noted are exactly the rows the transaction inserted */
static bool PendingStored = false;

/* This backend's counts, for history_cache_stats() */
static int64 StatReused = 0;
static int64 StatTakenIn = 0;
static int64 StatTopUps = 0;
static int64 StatWalks = 0;

static Size
shared_size(void)
{
	return sizeof(HistoryShared);
}

#if PG_VERSION_NUM >= 150000
static void
history_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
}
#endif

static void
history_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Shared = ShmemInitStruct("scoring client histories", shared_size(), &found);
	if (!found)
	{
		int			i;

		pg_atomic_init_u64(&Shared->epoch, 0);
		pg_atomic_init_u64(&Shared->floor, (uint64) DT_NOBEGIN);
		for (i = 0; i < HISTORY_SLOTS; i++)
		{
			HistorySlot *slot = &Shared->slots[i];

			SpinLockInit(&slot->mutex);
			slot->confirmed = false;
			slot->mark = slot->prev = DT_NOBEGIN;
			slot->bumps = 0;
			slot->client_id = 0;
			slot->won_at = DT_NOEND;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static uint32
slot_of(int64 client_id)
{
	uint32		h = hash_combine(murmurhash32((uint32) client_id),
								 murmurhash32((uint32) ((uint64) client_id >> 32)));

	return hash_combine(h, murmurhash32(MyDatabaseId)) & (HISTORY_SLOTS - 1);
}

static void
pending_clear(void)
{
	NPending = 0;
	PendingAll = false;
	PendingLatest = DT_NOBEGIN;
	PendingRelid = InvalidOid;
	PendingStored = false;
}

/* Raises an atomic TimestampTz to at least t */
static void
raise_to(pg_atomic_uint64 *at, TimestampTz t)
{
	uint64		old = pg_atomic_read_u64(at);

	while ((TimestampTz) old < t &&
		   !pg_atomic_compare_exchange_u64(at, &old, (uint64) t))
		;
}

/*
 * Publishes one lead: raises its slot's mark, or bumps the slot.  A lead
 * created after now bumps too: raised to it, the mark would make every
 * lead until then bump the slot.
 */
static void
publish_one(Published *p, TimestampTz now)
{
	HistorySlot *slot = &Shared->slots[p->slot];
	TimestampTz floor = (TimestampTz) pg_atomic_read_u64(&Shared->floor);

	SpinLockAcquire(&slot->mutex);
	p->raised = p->created_at > Max(slot->mark, floor) && p->created_at <= now;
	if (p->raised)
	{
		slot->prev = Max(slot->mark, floor);
		slot->mark = p->created_at;
		slot->client_id = p->client_id;
		slot->won_at = p->won_at;
		slot->confirmed = false;
	}
	else
		slot->bumps++;
	SpinLockRelease(&slot->mutex);
}

/*
 * Whether every lead noted was stored: the rows the transaction inserted
 * into the table, as PostgreSQL counts them for its statistics, are as
 * many.  A lead noted and then skipped (ON CONFLICT, a rolled-back
 * subtransaction) must not be confirmed.  False when statistics are off.
 */
static bool
pending_stored(void)
{
	PgStat_TableStatus *stats = find_tabstat_entry(PendingRelid);

	return stats != NULL && stats->trans != NULL &&
		stats->trans->nest_level == 1 && stats->trans->upper == NULL &&
		stats->trans->tuples_inserted == NPending;
}

/* Publishes what the transaction inserted (see the top of the file) */
static void
publish(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (PendingAll)
	{
		raise_to(&Shared->floor, Min(PendingLatest, now));
		pg_atomic_fetch_add_u64(&Shared->epoch, 1);
		return;
	}
	for (i = 0; i < NPending; i++)
		publish_one(&Pending[i], now);
	PendingStored = pending_stored();
}

/* Adds closing moments to a kept history's wins */
static void
kept_add_wins(KeptHistory *kept, const TimestampTz *wins, int nwins)
{
	if (kept->nwins + nwins > kept->capwins)
	{
		kept->capwins = Max(8, 2 * (kept->nwins + nwins));
		kept->wins = kept->wins == NULL ?
			MemoryContextAlloc(CacheContext, sizeof(TimestampTz) * kept->capwins) :
			repalloc(kept->wins, sizeof(TimestampTz) * kept->capwins);
	}
	if (nwins > 0)
		memcpy(kept->wins + kept->nwins, wins, sizeof(TimestampTz) * nwins);
	kept->nwins += nwins;
}

/*
 * Takes the one lead published in a kept history's slot since it was kept
 * into it: counted when it is the client's (client_id of the kept one),
 * and the history reaches the lead's moment, upto.  may_grow is false at
 * commit, where nothing may be allocated: a win that does not fit then
 * drops the history.
 */
static void
kept_take_in(KeptHistory *kept, int64 client_id, TimestampTz won_at,
			 TimestampTz upto, bool may_grow)
{
	if (client_id == kept->client_id)
	{
		if (!TIMESTAMP_IS_NOEND(won_at))
		{
			if (may_grow)
				kept_add_wins(kept, &won_at, 1);
			else if (kept->nwins < kept->capwins)
				kept->wins[kept->nwins++] = won_at;
			else
			{
				kept_delete(Kept, kept->client_id);
				return;
			}
		}
		kept->leads++;
	}
	kept->stamp.upto = upto;
}

/*
 * This backend's own lead, confirmed at commit: its kept history of the
 * client takes it in, as another backend's would, when the raise was the
 * only lead published since the history was kept
 */
static void
take_in_own(const Published *p, TimestampTz prev, uint64 bumps)
{
	KeptHistory *kept;

	if (Kept == NULL || (kept = kept_lookup(Kept, p->client_id)) == NULL ||
		kept->stamp.upto != prev || kept->stamp.bumps != bumps ||
		kept->stamp.epoch != pg_atomic_read_u64(&Shared->epoch) ||
		kept->stamp.generation != visible_generation())
		return;
	kept_take_in(kept, p->client_id, p->won_at, p->created_at, false);
}

/*
 * Once the transaction has committed, confirms the leads it raised marks
 * with, where nothing was published since, and takes them into its own
 * kept histories
 */
static void
confirm(void)
{
	int			i;

	for (i = 0; i < NPending; i++)
	{
		Published  *p = &Pending[i];
		HistorySlot *slot = &Shared->slots[p->slot];
		bool		confirmed = false;
		TimestampTz prev = 0;
		uint64		bumps = 0;

		if (!p->raised)
			continue;
		SpinLockAcquire(&slot->mutex);
		if (slot->mark == p->created_at && slot->client_id == p->client_id)
		{
			slot->confirmed = confirmed = true;
			prev = slot->prev;
			bumps = slot->bumps;
		}
		SpinLockRelease(&slot->mutex);
		if (confirmed)
			take_in_own(p, prev, bumps);
	}
}

static void
history_xact_callback(XactEvent event, void *arg)
{
	if (Shared == NULL || (NPending == 0 && !PendingAll))
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			publish();
			break;
		case XACT_EVENT_COMMIT:
			if (!PendingAll && PendingStored)
				confirm();
			pending_clear();
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_clear();
			break;
		default:
			break;
	}
}

/* Registers the shared memory (when preloaded) and the callback; from _PG_init */
void
history_cache_init(void)
{
	RegisterXactCallback(history_xact_callback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = history_shmem_request;
#else
	RequestAddinShmemSpace(shared_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = history_shmem_startup;
}

/*
 * Notes a lead the current transaction inserts into relid, to publish
 * before it commits.  settled: nothing may change the lead any more (no BEFORE
 * INSERT trigger comes after the caller).  won_at: its closed_at if won,
 * else DT_NOEND.
 */
void
history_cache_inserted(Oid relid, int64 client_id, TimestampTz created_at,
					   TimestampTz won_at, bool settled)
{
	Published  *p;

	if (Shared == NULL)
		return;
	PendingLatest = Max(PendingLatest, created_at);
	if (PendingAll)
		return;
	if (NPending == 0)
		PendingRelid = relid;
	if (!settled || NPending >= PUBLISH_MAX || relid != PendingRelid)
	{
		PendingAll = true;
		return;
	}
	if (Pending == NULL)
		Pending = MemoryContextAlloc(TopMemoryContext,
									 sizeof(Published) * PUBLISH_MAX);
	p = &Pending[NPending++];
	p->slot = slot_of(client_id);
	p->raised = false;
	p->client_id = client_id;
	p->created_at = created_at;
	p->won_at = won_at;
}

/*
 * Whether histories may be kept and used at all: the shared memory is
 * there, and this transaction has inserted no lead yet (its own leads are
 * visible to it, unpublished)
 */
bool
history_cache_usable(void)
{
	return Shared != NULL && NPending == 0 && !PendingAll;
}

/*
 * Reads what a history of client_id counted now depends on.  Call after
 * visible_begin(), which accepted the invalidations.
 */
void
history_cache_stamp(int64 client_id, HistoryStamp *stamp)
{
	HistorySlot *slot = &Shared->slots[slot_of(client_id)];
	TimestampTz floor;

	stamp->generation = visible_generation();
	stamp->epoch = pg_atomic_read_u64(&Shared->epoch);
	floor = (TimestampTz) pg_atomic_read_u64(&Shared->floor);
	SpinLockAcquire(&slot->mutex);
	stamp->bumps = slot->bumps;
	stamp->upto = Max(slot->mark, floor);
	stamp->raised_from = slot->confirmed && slot->mark > floor ?
		slot->prev : DT_NOEND;
	stamp->raised_by = slot->client_id;
	stamp->raised_won_at = slot->won_at;
	SpinLockRelease(&slot->mutex);
}

/* Drops every kept history */
static void
forget_kept(void)
{
	if (CacheContext != NULL)
		MemoryContextReset(CacheContext);
	Kept = NULL;
}

/*
 * The kept history of client_id that still holds at stamp (counted under
 * the same epoch, bumps and memo generation), or NULL.  When the one lead
 * published in its slot since was confirmed, the history takes it in and
 * reaches stamp->upto.  Valid until the next history_cache_keep().
 */
const KeptHistory *
history_cache_find(Oid lead_relid, int64 client_id, const HistoryStamp *stamp)
{
	KeptHistory *kept;

	if (lead_relid != KeptRelid)
	{
		forget_kept();
		KeptRelid = lead_relid;
	}
	if (Kept == NULL || (kept = kept_lookup(Kept, client_id)) == NULL)
		return NULL;
	if (kept->stamp.epoch != stamp->epoch || kept->stamp.bumps != stamp->bumps ||
		kept->stamp.generation != stamp->generation)
	{
		kept_delete(Kept, client_id);
		return NULL;
	}
	if (kept->stamp.upto != stamp->upto && kept->stamp.upto == stamp->raised_from)
	{
		kept_take_in(kept, stamp->raised_by, stamp->raised_won_at, stamp->upto,
					 true);
		StatTakenIn++;
	}
	return kept;
}

/* The moment up to which a kept history counts */
TimestampTz
history_cache_upto(const KeptHistory *kept)
{
	return kept->stamp.upto;
}

/* The leads a kept history counts, and of them the won ones closed by until */
void
history_cache_count(const KeptHistory *kept, TimestampTz until,
					int64 *leads, int64 *wins)
{
	int			i;

	*leads += kept->leads;
	for (i = 0; i < kept->nwins; i++)
		if (kept->wins[i] <= until)
			(*wins)++;
}

/*
 * Keeps what a walk counted of client_id's leads created up to
 * stamp->upto: leads of them, and the closing moments of the won ones.
 * With add, they come on top of what is kept already, counted up to an
 * earlier moment under the same stamp; the history now reaches stamp->upto.
 */
void
history_cache_keep(int64 client_id, const HistoryStamp *stamp, bool add,
				   int64 leads, const TimestampTz *wins, int nwins)
{
	KeptHistory *kept;
	bool		found;

	if (CacheContext == NULL)
		CacheContext = AllocSetContextCreate(TopMemoryContext,
											 "scoring kept histories",
											 ALLOCSET_DEFAULT_SIZES);
	if (Kept != NULL && !add && Kept->members >= HISTORY_CACHE_MAX)
		forget_kept();
	if (Kept == NULL)
		Kept = kept_create(CacheContext, 1024, NULL);
	kept = kept_insert(Kept, client_id, &found);
	if (!found)
	{
		kept->capwins = 0;
		kept->wins = NULL;
		if (add)
		{
			/* what it was to add to is gone */
			kept_delete(Kept, client_id);
			return;
		}
	}
	if (!add)
	{
		kept->leads = 0;
		kept->nwins = 0;
	}
	kept->stamp = *stamp;
	kept->leads += leads;
	kept_add_wins(kept, wins, nwins);
}

/* Counts a lead's history as reused, topped up or walked whole */
void
history_cache_counted(HistoryUse use)
{
	switch (use)
	{
		case HISTORY_REUSED:
			StatReused++;
			break;
		case HISTORY_TOPPED_UP:
			StatTopUps++;
			break;
		case HISTORY_WALKED:
			StatWalks++;
			break;
	}
}

PG_FUNCTION_INFO_V1(scoring_history_cache_stats);

/*
 * scoring.history_cache_stats(): whether the shared memory is there, how
 * many clients this backend keeps, and how its single-row leads counted
 * their histories since it started
 */
Datum
scoring_history_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(Shared != NULL);
	values[1] = Int64GetDatum(Kept != NULL ? (int64) Kept->members : 0);
	values[2] = Int64GetDatum(StatReused);
	values[3] = Int64GetDatum(StatTakenIn);
	values[4] = Int64GetDatum(StatTopUps);
	values[5] = Int64GetDatum(StatWalks);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(scoring_lead_inserted_replicated);

/* A column of the row a replica trigger fired for; false if null */
static bool
replicated_column(TriggerData *trigdata, const char *column, Datum *value)
{
	Relation	rel = trigdata->tg_relation;
	bool		isnull;

	*value = heap_getattr(trigdata->tg_trigtuple,
						  trigger_column(rel, "lead_inserted_replicated", column),
						  RelationGetDescr(rel), &isnull);
	return !isnull;
}

/*
 * Trigger on scoring.lead, AFTER INSERT FOR EACH ROW, enabled for replica
 * sessions only: logical replication's apply fires no lead_score, so the
 * leads it inserts are published from here.
 */
Datum
scoring_lead_inserted_replicated(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Datum		d;
	int64		client_id;
	TimestampTz created_at;
	TimestampTz won_at = DT_NOEND;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scoring.lead_inserted_replicated() must be fired AFTER INSERT ... FOR EACH ROW")));
	if (!is_scoring_lead(trigdata->tg_relation) ||
		!replicated_column(trigdata, "client_id", &d))
		PG_RETURN_POINTER(NULL);
	client_id = DatumGetInt64(d);
	created_at = replicated_column(trigdata, "created_at", &d) ?
		DatumGetTimestampTz(d) : DT_NOBEGIN;
	if (replicated_column(trigdata, "status", &d) &&
		strcmp(TextDatumGetCString(d), "won") == 0 &&
		replicated_column(trigdata, "closed_at", &d))
		won_at = DatumGetTimestampTz(d);
	history_cache_inserted(RelationGetRelid(trigdata->tg_relation), client_id,
						   created_at, won_at, true);
	PG_RETURN_POINTER(NULL);
}
