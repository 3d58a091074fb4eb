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
#include "common/hashfn.h"
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
 * At most this many entries (4 MB of slots; in a 20 s pgbench run of two
 * clients a backend notes more than half as many); past it the memo
 * starts again
 */
#define VISIBLE_MAX		(256 * 1024)

/* A noted entry: its heap TID; with simplehash's status, 8 bytes */
typedef struct VisibleEntry
{
	ItemPointerData tid;
	char		status;			/* for simplehash */
} VisibleEntry;

#define SH_PREFIX		seen
#define SH_ELEMENT_TYPE VisibleEntry
#define SH_KEY_TYPE		ItemPointerData
#define SH_KEY			tid
#define SH_HASH_KEY(tb, k) \
	hash_combine(murmurhash32(ItemPointerGetBlockNumberNoCheck(&(k))), \
				 ItemPointerGetOffsetNumberNoCheck(&(k)))
#define SH_EQUAL(tb, a, b) \
	(ItemPointerGetBlockNumberNoCheck(&(a)) == ItemPointerGetBlockNumberNoCheck(&(b)) && \
	 ItemPointerGetOffsetNumberNoCheck(&(a)) == ItemPointerGetOffsetNumberNoCheck(&(b)))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static MemoryContext VisibleContext = NULL;
static seen_hash *Visible = NULL;

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
	VisibleStale = false;
}

/*
 * Makes the memo current for a walk of lead_relid: accepts invalidations
 * and drops the memo when one asked to.  Returns whether the memo may be
 * used at all: not in parallel mode, and not on a standby, where changes
 * arrive by WAL replay and fire no trigger.
 */
bool
visible_begin(Oid lead_relid)
{
	if (IsInParallelMode() || RecoveryInProgress())
		return false;
	(void) anchor_oid(lead_relid);
	AcceptInvalidationMessages();
	if (VisibleStale || lead_relid != VisibleRelid)
		visible_reset();
	VisibleRelid = lead_relid;
	return true;
}

/* Whether the entry's lead is known visible */
bool
visible_known(ItemPointer tid)
{
	return Visible != NULL && seen_lookup(Visible, *tid) != NULL;
}

/*
 * Notes the entry tid, whose visible version index_fetch_heap just put in
 * slot, when that version is settled: inserted by a committed transaction
 * other than this one, neither updated, deleted nor locked.  The hint bit
 * is read without the buffer lock: a stale read only notes less, and an
 * xmax set meanwhile comes with an invalidation.
 */
void
visible_note(ItemPointer tid, TupleTableSlot *slot)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);
	HeapTupleHeader header = tuple->t_data;
	bool		found;

	if (!(header->t_infomask & HEAP_XMAX_INVALID) ||
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(header)))
		return;
	if (Visible != NULL && Visible->members >= VISIBLE_MAX)
		visible_reset();
	if (Visible == NULL)
	{
		if (VisibleContext == NULL)
			VisibleContext = AllocSetContextCreate(CacheMemoryContext,
												   "scoring visible leads",
												   ALLOCSET_DEFAULT_SIZES);
		Visible = seen_create(VisibleContext, 1024, NULL);
	}
	seen_insert(Visible, *tid, &found);
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
