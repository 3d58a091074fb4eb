/*-------------------------------------------------------------------------
 *
 * visible.c
 *		This backend's memo of the leads its history walks found visible.
 *
 * A lead's history walk (client.c) counts the client's earlier leads in
 * lead_client_history_idx.  Where the visibility map does not say a lead's
 * heap page is all visible it must visit the heap to know whether the lead
 * counts, and under a steady stream of leads those are exactly a busy
 * client's latest leads: every later lead of the client visited them
 * again, and with two sessions inserting, each such visit is a page the
 * other backend has just written (a cache miss on another core).
 *
 * So the walk notes the TIDs of the index entries it found visible for
 * good as far as this backend can tell: the version the entry leads to was
 * inserted by a committed transaction (not this one: SnapshotSelf shows
 * this transaction's own rows, which a rollback would take away) and
 * nobody has updated, deleted or locked it (its xmax is invalid).  Such a
 * lead stays visible, with the client_id, created_at, status and closed_at
 * its entry holds, until an UPDATE or DELETE of scoring.lead sets its xmax.
 * A later walk counts a noted entry without visiting the heap.
 *
 * Every UPDATE and DELETE of scoring.lead therefore sends, once all its
 * rows are changed and before it commits, an invalidation that makes
 * every backend drop its memo before its next walk: a statement trigger
 * (scoring.lead_versions_changed), and for logical replication's apply,
 * which fires row triggers only, a row trigger enabled for replica
 * sessions.  The message goes out at once, not at commit, so that no walk
 * can see the new version of an updated lead (once it commits) while
 * still counting the old one from its memo; a walk that refills the memo
 * after the message sees the xmax set and does not note the entry.  The
 * message is a relcache invalidation naming the extension's OID, which is
 * no relation's, so it costs other backends no relcache rebuild.
 * A transaction that updates or deletes leads itself walks without the
 * memo from then on (client.c asks PostgreSQL's count of its changes):
 * within a statement, a later row's walk sees the xmax the statement set
 * on an earlier row before any message goes out.
 * TRUNCATE, VACUUM FULL and CLUSTER, which give rows new TIDs, invalidate
 * scoring.lead itself, which drops the memo too.  A row lock (SELECT FOR
 * UPDATE, a foreign key check) on a noted lead changes nothing the walk
 * counts.
 *
 * Vacuum never takes a visible row away, and a line pointer is reused only
 * after its row died, that is after an UPDATE or DELETE dropped the memo.
 * The walk accepts invalidations before it reads the memo, and its first
 * buffer lock orders that check before what it reads of the heap.
 *
 * IDENTIFICATION
 *		src/visible.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "storage/sinval.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "scoring.h"

/*
 * At most this many leads noted (2 MB of TIDs, up to twice that allocated;
 * in a 20 s pgbench run of two clients a backend notes more than half as
 * many); past it the memo starts again
 */
#define VISIBLE_MAX		(256 * 1024)

/*
 * A client's noted leads: their heap TIDs as ordered integers (block <<
 * 16 | offset), sorted, then those the client's last walk noted, sorted in
 * when the next walk starts.  A walk looks up the entries of one client,
 * so keeping each client's together makes it read a few adjacent cache
 * lines; one table of all the TIDs made every entry a cache miss.
 */
typedef struct VisibleLeads
{
	int64		client_id;
	uint64	   *tids;
	uint32		nsorted;		/* tids[0 .. nsorted) are sorted */
	uint32		ntids;
	uint32		size;			/* allocated */
	char		status;			/* for simplehash */
} VisibleLeads;

#define SH_PREFIX		seen
#define SH_ELEMENT_TYPE VisibleLeads
#define SH_KEY			client_id
#include "idhash.h"

static MemoryContext VisibleContext = NULL;
static seen_hash *Visible = NULL;
static uint32 VisibleNoted = 0; /* TIDs in all of Visible's entries */

/* The scoring.lead whose TIDs the memo holds */
static Oid	VisibleRelid = InvalidOid;

/*
 * The extension's OID, the name the invalidation message goes by, looked
 * up for the scoring.lead AnchorLead (a new extension makes a new table)
 */
static Oid	AnchorOid = InvalidOid;
static Oid	AnchorLead = InvalidOid;

/* Whether an invalidation asked to drop the memo */
static bool VisibleStale = false;

/* How many times the memo was dropped: what was counted with it holds until then */
static uint64 VisibleGeneration = 0;

PG_FUNCTION_INFO_V1(scoring_lead_versions_changed);

/* The extension's OID, for the scoring.lead lead_relid */
static Oid
anchor_oid(Oid lead_relid)
{
	if (lead_relid != AnchorLead)
	{
		AnchorOid = get_extension_oid("scoring", false);
		AnchorLead = lead_relid;
	}
	return AnchorOid;
}

/* Marks the memo stale when scoring.lead, the anchor or everything is */
static void
visible_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == VisibleRelid ||
		(OidIsValid(AnchorOid) && relid == AnchorOid))
		VisibleStale = true;
}

/* Registers the callback; called from _PG_init */
void
visible_init(void)
{
	CacheRegisterRelcacheCallback(visible_invalidate, (Datum) 0);
}

static void
visible_reset(void)
{
	if (VisibleContext != NULL)
		MemoryContextReset(VisibleContext);
	Visible = NULL;
	VisibleNoted = 0;
	VisibleStale = false;
	VisibleGeneration++;
}

/*
 * The memo's generation: it changes whenever visible_begin() drops the
 * memo, so also after every UPDATE or DELETE of leads
 */
uint64
visible_generation(void)
{
	return VisibleGeneration;
}

/*
 * Makes the memo current for a walk of lead_relid: accepts invalidations
 * and drops the memo when one asked to, or when it is full.  Returns
 * whether the memo may be used at all: not in parallel mode, and not on a
 * standby, where changes arrive by WAL replay and fire no trigger.
 */
bool
visible_begin(Oid lead_relid)
{
	if (IsInParallelMode() || RecoveryInProgress())
		return false;
	(void) anchor_oid(lead_relid);
	AcceptInvalidationMessages();
	if (VisibleStale || lead_relid != VisibleRelid || VisibleNoted >= VISIBLE_MAX)
		visible_reset();
	VisibleRelid = lead_relid;
	return true;
}

static int
tid_key_cmp(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/*
 * Sorts in the TIDs the last walk noted: sorts them, then merges them in
 * from the end, which moves only the sorted TIDs above the least of them
 * (none, for a client whose newer leads lie further on in the heap)
 */
static void
sort_in_noted(VisibleLeads *leads)
{
	uint32		nsorted = leads->nsorted;
	uint32		nnew = leads->ntids - nsorted;
	uint64	   *tids = leads->tids;

	qsort(tids + nsorted, nnew, sizeof(uint64), tid_key_cmp);
	if (nsorted > 0 && tids[nsorted] < tids[nsorted - 1])
	{
		uint64	   *noted = palloc(nnew * sizeof(uint64));
		int64		i = (int64) nsorted - 1;
		int64		j = (int64) nnew - 1;
		int64		out = (int64) leads->ntids - 1;

		memcpy(noted, tids + nsorted, nnew * sizeof(uint64));
		while (j >= 0)
			tids[out--] = i >= 0 && tids[i] > noted[j] ? tids[i--] : noted[j--];
		pfree(noted);
	}
	leads->nsorted = leads->ntids;
}

/*
 * The leads of client_id noted so far, NULL if none; valid until the walk
 * ends (the next visible_begin() may drop them)
 */
VisibleLeads *
visible_client(int64 client_id)
{
	VisibleLeads *leads;

	if (Visible == NULL || (leads = seen_lookup(Visible, client_id)) == NULL)
		return NULL;
	if (leads->nsorted < leads->ntids)
		sort_in_noted(leads);
	return leads;
}

static inline uint64
tid_key(ItemPointer tid)
{
	return ((uint64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

/*
 * Whether the entry's lead is among the client's noted ones, by binary
 * search (seen may be NULL)
 */
bool
visible_known(const VisibleLeads *seen, ItemPointer tid)
{
	uint64		key = tid_key(tid);
	uint32		lo = 0,
				hi;

	if (seen == NULL)
		return false;
	hi = seen->nsorted;
	while (lo < hi)
	{
		uint32		mid = lo + (hi - lo) / 2;

		if (seen->tids[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < seen->nsorted && seen->tids[lo] == key;
}

/*
 * Notes the entry tid of client_id's lead, whose visible version
 * index_fetch_heap just put in slot, when that version is settled:
 * inserted by a committed transaction other than this one, neither
 * updated, deleted nor locked.  The hint bit is read without the buffer
 * lock: a stale read only notes less, and an xmax set meanwhile comes with
 * an invalidation.  *seen is the client's entry, made here if NULL; the
 * walk notes each entry once, as one it did not know.  Returns whether it
 * noted the entry: whether the version is settled.
 */
bool
visible_note(VisibleLeads **seen, int64 client_id, ItemPointer tid,
			 TupleTableSlot *slot)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);
	HeapTupleHeader header = tuple->t_data;
	VisibleLeads *leads = *seen;

	if (!(header->t_infomask & HEAP_XMAX_INVALID) ||
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(header)))
		return false;
	if (leads == NULL)
	{
		bool		found;

		if (VisibleContext == NULL)
			VisibleContext = AllocSetContextCreate(CacheMemoryContext,
												   "scoring visible leads",
												   ALLOCSET_DEFAULT_SIZES);
		if (Visible == NULL)
			Visible = seen_create(VisibleContext, 256, NULL);
		leads = seen_insert(Visible, client_id, &found);
		if (!found)
		{
			leads->nsorted = leads->ntids = 0;
			leads->size = 8;
			leads->tids = MemoryContextAlloc(VisibleContext,
											 leads->size * sizeof(uint64));
		}
		*seen = leads;
	}
	if (leads->ntids == leads->size)
	{
		leads->size *= 2;
		leads->tids = repalloc(leads->tids, leads->size * sizeof(uint64));
	}
	leads->tids[leads->ntids++] = tid_key(tid);
	VisibleNoted++;
	return true;
}

/*
 * Trigger on scoring.lead, AFTER UPDATE OR DELETE, per statement and (for
 * replica sessions) per row: rows got an xmax, so every backend drops its
 * memo before its next walk.  The message is sent now, before the change
 * commits (see the top of the file).
 */
Datum
scoring_lead_versions_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	SharedInvalidationMessage msg;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scoring.lead_versions_changed() must be called as a trigger")));

	/*
	 * Per row only for logical replication's apply, which fires no
	 * statement triggers: elsewhere the statement trigger has it, and a
	 * message per row of a large UPDATE would flood the queue
	 */
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) &&
		SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
		PG_RETURN_POINTER(NULL);

	memset(&msg, 0, sizeof(msg));
	msg.rc.id = SHAREDINVALRELCACHE_ID;
	msg.rc.dbId = MyDatabaseId;
	msg.rc.relId = anchor_oid(RelationGetRelid(trigdata->tg_relation));
	SendSharedInvalidMessages(&msg, 1);
	VisibleStale = true;
	PG_RETURN_POINTER(NULL);
}
