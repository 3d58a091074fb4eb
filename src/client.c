/*-------------------------------------------------------------------------
 *
 * client.c
 *		A lead's client and the client's history, read by direct index scans.
 *
 * Every lead with a client needs the client's attributes and how many of
 * its earlier leads there were and were won.  Going through SPI cost more
 * than the rest of scoring together, so the trigger reads the client by
 * its primary key (once per backend while the client does not change: see
 * client_cache.c) and walks the client's leads in lead_client_history_idx
 * (client_id, created_at) INCLUDE (status, closed_at) itself, just as the
 * equivalent query would:
 *
 *		SELECT count(*),
 *			   count(*) FILTER (WHERE status = 'won' AND closed_at <= $2)
 *		  FROM scoring.lead WHERE client_id = $1 AND created_at < $2
 *
 * train.c counts the same for all its leads in one ordered pass over that
 * index (read_histories), so training and scoring agree.
 *
 * An import of history inserts many leads of a client in one statement,
 * usually in created_at order, and each lead's walk would visit all the
 * earlier ones again, fetching from the heap those the statement itself
 * inserted (their pages are not all-visible yet).  So within one INSERT
 * command a memo keeps, per client, its row (as the command's first lead
 * of the client read it, so one import scores a client's leads with one
 * version of the client) and what the walk found before the last lead's
 * moment; a later lead walks only from there.  Anything that could change
 * what was counted ends the memo: another command, an update or delete
 * through the lead trigger (ON CONFLICT DO UPDATE included), a rolled-back
 * subtransaction, the end of the transaction.  A lead earlier than the
 * last one walks from the start.  Leads others commit meanwhile behind
 * the memo's moment are not seen, as if they had committed after the
 * import.
 *
 * Even so, every lead walked down the index to its client's entries, and
 * in an import those descents were a fifth of the time.  What a later
 * walk finds is what others committed, which the memo accepts not to see,
 * and what the statement inserted, which the trigger passed on itself.
 * So the memo walks a client's leads once, all of them, keeps those from
 * the lead's moment on (ahead), and adds each lead the trigger passes on;
 * a later lead counts from there without a walk.  That needs every lead
 * passed on to be stored as it was passed: no other BEFORE INSERT row
 * trigger may drop or change it, and nothing may skip it, as ON CONFLICT
 * DO NOTHING does.  The trigger says the first (with another such trigger
 * there is no memo at all: it could move a lead from where any memo would
 * look); for the second, PostgreSQL's own count of the rows the
 * (sub)transaction inserted into scoring.lead (kept for its statistics)
 * must have grown by exactly the leads passed on since the memo began.
 * When it has not, or statistics are off (track_counts), the memo starts
 * again and walks for every lead, as above.
 *
 * IDENTIFICATION
 *		src/client.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/xact.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "scoring.h"

/* Columns of lead_client_history_idx, with the INCLUDE ones */
#define HISTORY_IDX_COLUMNS		4
#define HISTORY_IDX_CREATED_AT	2
#define HISTORY_IDX_STATUS		3
#define HISTORY_IDX_CLOSED_AT	4

/* Relations, indexes and attribute numbers, looked up once per backend */
typedef struct ClientRels
{
	bool		valid;
	Oid			client;
	Oid			client_pkey;
	Oid			lead;
	Oid			lead_history;
	AttrNumber	kind;
	AttrNumber	industry;
	AttrNumber	okved;
	AttrNumber	core_industry;
	AttrNumber	annual_turnover;
} ClientRels;

static ClientRels Rels;

/* A lead of a client not counted yet: its moment and when it was won */
typedef struct AheadLead
{
	TimestampTz created_at;
	TimestampTz won_at;			/* DT_NOEND: not won (or never closed) */
} AheadLead;

/*
 * What the command has read of one client: its row (as the command's first
 * lead of the client read it) and what the walk of its leads found before
 * last_at: the leads, the wins closed by last_at, and the closing moments
 * of wins closed later, which count for later leads.  A trusted memo also
 * keeps the leads from last_at on, in created_at order from ahead[next].
 */
typedef struct HistoryMemo
{
	int64		client_id;
	LeadInput	client;			/* its client_* fields, in MemoContext */
	bool		walked;			/* whether the fields below are set */
	TimestampTz last_at;
	int64		leads;
	int64		wins;
	Closings	pending;		/* wins closed after last_at */
	AheadLead  *ahead;
	int			next;
	int			nahead;
	int			cap;
} HistoryMemo;

/*
 * The memo finds a client's entry through a simplehash of small slots,
 * where dynahash followed a chain of pointers: an import looks a client up
 * for every lead, and dynahash's lookups were 4 % of its time.  A probe
 * reads a few slots from one or two cache lines, then the entry itself.
 */
typedef struct MemoSlot
{
	int64		client_id;
	char		status;			/* for simplehash */
	HistoryMemo *memo;			/* in MemoContext */
} MemoSlot;

#define SH_PREFIX		memo
#define SH_ELEMENT_TYPE MemoSlot
#define SH_KEY			client_id
#include "idhash.h"

/*
 * What a walk gives the history cache (history_cache.c): of the leads it
 * counted, those created up to upto, the closing moments of the won ones
 * (a heap; only its values matter here), and whether all were settled
 */
typedef struct HistoryKeep
{
	TimestampTz upto;
	int64		leads;
	Closings	wins;
	bool		settled;
} HistoryKeep;

/* The memo of the current command, in MemoContext; NULL when there is none */
static memo_hash *Memo = NULL;
static MemoryContext MemoContext = NULL;
static CommandId MemoCommand = InvalidCommandId;

/*
 * Whether the memo takes the leads passed on as stored, without walking
 * to them: MemoBase is the count of rows the (sub)transaction had
 * inserted into scoring.lead at nest level MemoLevel when the memo began,
 * MemoPassed the leads the trigger passed on since.  A command whose memo
 * lost that trust walks for the rest of it.
 */
static bool MemoTrusted = false;
static int	MemoLevel;
static int64 MemoBase;
static int64 MemoPassed;
static CommandId UntrustedCommand = InvalidCommandId;

/*
 * The leads a trusted memo keeps ahead, over all its clients: an import
 * of old leads into a long history would keep much of the table, so past
 * this many (16 MB) the command walks instead.
 */
#define MEMO_MAX_AHEAD	(1024 * 1024)
static int64 MemoAhead;

/* The command of the last lead read: a memo starts with its second lead */
static CommandId LastCommand = InvalidCommandId;

/* Forgets the lookups when one of the relations changes */
static void
client_rels_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Rels.client ||
		relid == Rels.client_pkey || relid == Rels.lead ||
		relid == Rels.lead_history)
		Rels.valid = false;
}

/* Forgets the history memo; the lead trigger calls it on updates and deletes */
void
client_history_forget(void)
{
	if (MemoContext != NULL)
		MemoryContextDelete(MemoContext);
	MemoContext = NULL;
	Memo = NULL;
}

/* The memo ends with the transaction and with a rolled-back subtransaction */
static void
memo_xact_end(XactEvent event, void *arg)
{
	/* its context is a child of TopTransactionContext, freed with it */
	MemoContext = NULL;
	Memo = NULL;
	LastCommand = InvalidCommandId;
	UntrustedCommand = InvalidCommandId;
}

static void
memo_subxact_end(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		client_history_forget();
}

/* Registers the callbacks; called from _PG_init */
void
client_init(void)
{
	CacheRegisterRelcacheCallback(client_rels_invalidate, (Datum) 0);
	RegisterXactCallback(memo_xact_end, NULL);
	RegisterSubXactCallback(memo_subxact_end, NULL);
}

/* The OID of a relation of the scoring schema, complaining when missing */
static Oid
scoring_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"scoring.%s\" does not exist", name),
				 errhint("Reinstall the extension: DROP EXTENSION scoring; CREATE EXTENSION scoring.")));
	return relid;
}

/* The number of a column, complaining when missing */
static AttrNumber
column(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of \"%s\" does not exist", name,
						get_rel_name(relid))));
	return attnum;
}

/* Looks everything up */
static void
client_rels_resolve(void)
{
	Oid			nsp = get_namespace_oid("scoring", false);

	Rels.client = scoring_relid(nsp, "client");
	Rels.client_pkey = scoring_relid(nsp, "client_pkey");
	Rels.lead = scoring_relid(nsp, "lead");
	Rels.lead_history = scoring_relid(nsp, "lead_client_history_idx");
	Rels.kind = column(Rels.client, "kind");
	Rels.industry = column(Rels.client, "industry");
	Rels.okved = column(Rels.client, "okved");
	Rels.core_industry = column(Rels.client, "core_industry");
	Rels.annual_turnover = column(Rels.client, "annual_turnover");
	Rels.valid = true;
}

/* Whether rel is scoring.lead (a trigger function may be put on others) */
bool
is_scoring_lead(Relation rel)
{
	if (!Rels.valid)
		client_rels_resolve();
	return RelationGetRelid(rel) == Rels.lead;
}

/* A text attribute of a slot as a C string, NULL when SQL NULL */
static const char *
slot_text(TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Reads the client's row into lead; has_client says whether there was one */
static void
read_client(LeadInput *lead, int64 client_id, Snapshot snapshot)
{
	Relation	rel = table_open(Rels.client, AccessShareLock);
	Relation	idx = index_open(Rels.client_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan = index_beginscan(rel, idx, snapshot, 1, 0);
	ScanKeyData key;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(client_id));
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		lead->has_client = true;
		lead->client_kind = slot_text(slot, Rels.kind);
		lead->client_industry = slot_text(slot, Rels.industry);
		lead->client_okved = slot_text(slot, Rels.okved);
		d = slot_getattr(slot, Rels.core_industry, &isnull);
		lead->client_core = isnull ? -1 : DatumGetBool(d) ? 1 : 0;
		d = slot_getattr(slot, Rels.annual_turnover, &isnull);
		lead->client_turnover = isnull ? NULL : DatumGetNumericCopy(d);
	}

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	/* the locks stay to the end of the transaction: the next lead finds them */
	index_close(idx, NoLock);
	table_close(rel, NoLock);
}

/* Whether a status datum is 'won', without copying it */
static bool
is_won(Datum status)
{
	text	   *t = DatumGetTextPP(status);

	return VARSIZE_ANY_EXHDR(t) == 3 && memcmp(VARDATA_ANY(t), "won", 3) == 0;
}

/* Counts an earlier lead of a client, won at won_at, for a lead at until */
static inline void
count_lead(TimestampTz won_at, TimestampTz until, int64 *leads, int64 *wins,
		   Closings *pending)
{
	(*leads)++;
	if (TIMESTAMP_IS_NOEND(won_at))
		return;
	if (won_at <= until)
		(*wins)++;
	else if (pending != NULL)
		closings_push(pending, won_at);
}

/* Adds a lead to the end of a memo's leads ahead */
static void
ahead_append(HistoryMemo *memo, TimestampTz created_at, TimestampTz won_at)
{
	if (memo->nahead == memo->cap)
	{
		memo->cap = memo->cap == 0 ? 8 : memo->cap * 2;
		memo->ahead = memo->ahead == NULL ?
			MemoryContextAlloc(MemoContext, sizeof(AheadLead) * memo->cap) :
			repalloc(memo->ahead, sizeof(AheadLead) * memo->cap);
	}
	memo->ahead[memo->nahead].created_at = created_at;
	memo->ahead[memo->nahead].won_at = won_at;
	memo->nahead++;
	MemoAhead++;
}

/*
 * Whether this transaction has updated or deleted rows of rel (the
 * statement running now included), as PostgreSQL counts them for its
 * statistics; true when it does not count.  A walk then leaves the memo of
 * visible leads alone: it may hold leads this transaction has just given
 * an xmax, and their messages go out only when the statement ends.
 */
static bool
own_changes(Relation rel)
{
	PgStat_TableStatus *stats = rel->pgstat_info;
	PgStat_TableXactStatus *trans;

	if (stats == NULL)
		return true;
	for (trans = stats->trans; trans != NULL; trans = trans->upper)
		if (trans->tuples_updated > 0 || trans->tuples_deleted > 0)
			return true;
	return false;
}

/*
 * Walks the client's leads created in [from, until) (from DT_NOBEGIN: all
 * before until), adding them to *leads and the won ones closed by until
 * to *wins; the closing moments of wins closed later go to pending when
 * it is given.  With ahead, the walk goes on past until and appends the
 * leads from until on to ahead's, in created_at order.  Like an
 * index-only scan, it reads status and closed_at from the index, and
 * visits the heap only where the visibility map does not say the page is
 * all visible, to see whether the lead is.  The index's values are those
 * of the version it finds: an update that changes an indexed column, as
 * these are, is never a HOT update.
 *
 * The scan keys give the client and the start; without ahead, the walk
 * stops at until itself, from the created_at it reads anyway: a new lead
 * usually comes after all of its client's others, and a key the scan
 * checked for every entry would only ever be true.
 *
 * lead_rel: the trigger's relation, if the caller has one; when it is
 * scoring.lead, the walk reads through it instead of opening the table.
 * keep: given for the history cache, it gets the leads counted that were
 * created up to keep->upto (before until), and learns whether all of them
 * were settled (visible.c) with no lead at all after keep->upto: an entry
 * the walk did not count, as not visible, or one after keep->upto, even
 * one in progress or from until on, unsettles it.
 */
static void
walk_history(Relation lead_rel, int64 client_id, TimestampTz from,
			 TimestampTz until, int64 *leads, int64 *wins, Closings *pending,
			 HistoryMemo *ahead, HistoryKeep *keep)
{
	/* the trigger's own scoring.lead, already open, saves opening it again */
	Relation	rel = lead_rel != NULL && RelationGetRelid(lead_rel) == Rels.lead ?
		lead_rel : table_open(Rels.lead, AccessShareLock);
	Relation	idx = index_open(Rels.lead_history, AccessShareLock);
	TupleTableSlot *slot = NULL;	/* made for the first heap visit */
	int			nkeys = TIMESTAMP_IS_NOBEGIN(from) ? 1 : 2;
	IndexScanDesc scan;
	Buffer		vmbuffer = InvalidBuffer;
	ScanKeyData keys[2];
	ItemPointer tid;
	bool		memo;
	VisibleLeads *seen = NULL;	/* the client's leads noted visible */

	if (RelationGetNumberOfAttributes(idx) != HISTORY_IDX_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"scoring.lead_client_history_idx\" is not the extension's"),
				 errdetail("It must be on (client_id, created_at) INCLUDE (status, closed_at)."),
				 errhint("Reinstall the extension: DROP EXTENSION scoring; CREATE EXTENSION scoring.")));
	memo = !own_changes(rel) && visible_begin(RelationGetRelid(rel));
	if (memo)
		seen = visible_client(client_id);
	else if (keep != NULL)
		keep->settled = false;	/* without the memo, nothing to tell it by */
	scan = index_beginscan(rel, idx, SnapshotSelf, nkeys, 0);

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(client_id));
	if (nkeys == 2)
		ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_TIMESTAMPTZ_GE,
					TimestampTzGetDatum(from));
	scan->xs_want_itup = true;
	index_rescan(scan, keys, nkeys, NULL, 0);

	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		IndexTuple	itup = scan->xs_itup;
		TupleDesc	itupdesc = scan->xs_itupdesc;
		Datum		d;
		bool		isnull;
		bool		settled = true;
		TimestampTz created_at,
					won_at = DT_NOEND;

		/* the columns one by one: closed_at is read only for a won lead */
		d = index_getattr(itup, HISTORY_IDX_CREATED_AT, itupdesc, &isnull);
		created_at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		if (keep != NULL && created_at > keep->upto)
			keep->settled = false;	/* a lead after the kept moment */
		if (created_at >= until && ahead == NULL)
			break;
		if (!VM_ALL_VISIBLE(rel, ItemPointerGetBlockNumber(tid), &vmbuffer) &&
			!(memo && visible_known(seen, tid)))
		{
			ItemPointerData entry = *tid;	/* the fetch moves along HOT chains */

			if (slot == NULL)
				slot = table_slot_create(rel, NULL);
			if (!index_fetch_heap(scan, slot))
			{
				/* not visible: in progress, or dead */
				if (keep != NULL && created_at <= keep->upto)
					keep->settled = false;
				continue;
			}
			settled = memo && visible_note(&seen, client_id, &entry, slot);
		}

		d = index_getattr(itup, HISTORY_IDX_STATUS, itupdesc, &isnull);
		if (!isnull && is_won(d))
		{
			d = index_getattr(itup, HISTORY_IDX_CLOSED_AT, itupdesc, &isnull);
			if (!isnull)
				won_at = DatumGetTimestampTz(d);
		}
		if (created_at < until)
			count_lead(won_at, until, leads, wins, pending);
		else
			ahead_append(ahead, created_at, won_at);
		if (keep != NULL && created_at <= keep->upto)
		{
			keep->settled &= settled;
			keep->leads++;
			if (!TIMESTAMP_IS_NOEND(won_at))
				closings_push(&keep->wins, won_at);
		}
	}

	if (BufferIsValid(vmbuffer))
		ReleaseBuffer(vmbuffer);
	index_endscan(scan);
	if (slot != NULL)
		ExecDropSingleTupleTableSlot(slot);
	/* the locks stay to the end of the transaction: the next lead finds them */
	index_close(idx, NoLock);
	if (rel != lead_rel)
		table_close(rel, NoLock);
}

/*
 * Whether a single-row lead of the trigger on rel may count its client's
 * history through the kept histories: they are there (the library was
 * preloaded), rel is scoring.lead, and this transaction has neither
 * inserted nor changed leads, which it would see and nobody else would.
 */
static bool
may_keep_history(Relation rel)
{
	return history_cache_usable() && RelationGetRelid(rel) == Rels.lead &&
		!own_changes(rel) && visible_begin(Rels.lead);
}

/*
 * Counts a single-row lead's history (leads before until, wins closed by
 * then) through this backend's kept histories (history_cache.c): what is
 * kept of the client, and a walk of the entries after it when a lead was
 * published since; otherwise a walk of all of them.  Keeps the leads up to
 * the moment the shared counters allow, when every one was settled.
 */
static void
read_history_kept(Relation rel, int64 client_id, TimestampTz until,
				  int64 *leads, int64 *wins)
{
	HistoryStamp stamp;
	const KeptHistory *kept;
	HistoryKeep keep;
	TimestampTz from = DT_NOBEGIN;
	bool		add = false;

	history_cache_stamp(client_id, &stamp);
	kept = history_cache_find(RelationGetRelid(rel), client_id, &stamp);
	if (kept != NULL && history_cache_upto(kept) < until)
	{
		history_cache_count(kept, until, leads, wins);
		if (stamp.upto == history_cache_upto(kept))
		{
			/* nothing published since, so nothing after it to walk */
			history_cache_counted(HISTORY_REUSED);
			return;
		}
		from = history_cache_upto(kept) + 1;
		add = true;
	}

	keep.upto = stamp.upto;
	keep.leads = 0;
	keep.wins = (Closings) {NULL, 0, 0, CurrentMemoryContext};
	keep.settled = true;
	walk_history(rel, client_id, from, until, leads, wins, NULL, NULL,
				 stamp.upto < until ? &keep : NULL);
	history_cache_counted(add ? HISTORY_TOPPED_UP : HISTORY_WALKED);
	if (stamp.upto < until && keep.settled)
		history_cache_keep(client_id, &stamp, add, keep.leads, keep.wins.v,
						   keep.wins.n);
	if (keep.wins.v != NULL)
		pfree(keep.wins.v);
}

/*
 * How many rows the current (sub)transaction has inserted into rel, as
 * PostgreSQL counts them for its statistics; false when it does not
 * (track_counts is off)
 */
static bool
rows_inserted(Relation rel, int64 *count)
{
	PgStat_TableStatus *stats = rel->pgstat_info;

	if (stats == NULL)
		return false;
	/* the counts of the innermost level that touched rel, maybe an outer one */
	*count = stats->trans != NULL &&
		stats->trans->nest_level == GetCurrentTransactionNestLevel() ?
		stats->trans->tuples_inserted : 0;
	return true;
}

/*
 * Whether every lead passed on since the memo began was stored, and the
 * memo has not grown too big to keep
 */
static bool
memo_still_trusted(Relation rel)
{
	int64		count;

	return MemoAhead <= MEMO_MAX_AHEAD &&
		GetCurrentTransactionNestLevel() == MemoLevel &&
		rows_inserted(rel, &count) && count - MemoBase == MemoPassed;
}

/* The memo entry of a client in the current command, *found if it has one */
static HistoryMemo *
memo_entry(int64 client_id, const InsertedLead *insert, bool *found)
{
	CommandId	command = GetCurrentCommandId(false);
	MemoSlot   *slot;

	if (Memo != NULL &&
		(MemoCommand != command ||
		 (MemoTrusted && !memo_still_trusted(insert->rel))))
	{
		if (MemoCommand == command)
			UntrustedCommand = command;
		client_history_forget();
	}
	if (Memo == NULL)
	{
		MemoContext = AllocSetContextCreate(TopTransactionContext,
											"scoring history memo",
											ALLOCSET_DEFAULT_SIZES);
		Memo = memo_create(MemoContext, 256, NULL);
		MemoCommand = command;
		MemoLevel = GetCurrentTransactionNestLevel();
		MemoPassed = 0;
		MemoAhead = 0;
		MemoTrusted = command != UntrustedCommand &&
			rows_inserted(insert->rel, &MemoBase);
	}
	slot = memo_insert(Memo, client_id, found);
	if (!*found)
	{
		slot->memo = MemoryContextAlloc(MemoContext, sizeof(HistoryMemo));
		slot->memo->client_id = client_id;
	}
	return slot->memo;
}

/*
 * Counts the client's leads created before created_at, and the won ones
 * closed by then, through the command's memo of the client (see the top
 * of this file).
 */
static void
read_history_memo(LeadInput *lead, HistoryMemo *memo, TimestampTz created_at)
{
	if (!memo->walked || created_at < memo->last_at)
	{
		memo->leads = memo->wins = 0;
		memo->pending.n = 0;
		memo->next = memo->nahead = 0;
		walk_history(NULL, memo->client_id, DT_NOBEGIN, created_at,
					 &memo->leads, &memo->wins, &memo->pending,
					 MemoTrusted ? memo : NULL, NULL);
		memo->walked = true;
	}
	else
	{
		/* wins closed since the memo's moment count now */
		memo->wins += closings_settle(&memo->pending, created_at);
		if (!MemoTrusted)
			walk_history(NULL, memo->client_id, memo->last_at, created_at,
						 &memo->leads, &memo->wins, &memo->pending, NULL, NULL);
		for (; memo->next < memo->nahead &&
			 memo->ahead[memo->next].created_at < created_at; memo->next++)
			count_lead(memo->ahead[memo->next].won_at, created_at,
					   &memo->leads, &memo->wins, &memo->pending);
	}
	memo->last_at = created_at;
	lead->prior_leads = memo->leads;
	lead->prior_wins = memo->wins;
}

/*
 * Copies the client part of src (has_client and the client_* fields) into
 * dst, its strings and number into the current memory context
 */
void
lead_client_copy(LeadInput *dst, const LeadInput *src)
{
	dst->has_client = src->has_client;
	dst->client_kind = src->client_kind ? pstrdup(src->client_kind) : NULL;
	dst->client_industry =
		src->client_industry ? pstrdup(src->client_industry) : NULL;
	dst->client_okved = src->client_okved ? pstrdup(src->client_okved) : NULL;
	dst->client_core = src->client_core;
	dst->client_turnover = src->client_turnover == NULL ? NULL :
		DatumGetNumericCopy(NumericGetDatum(src->client_turnover));
}

/* Keeps the client part of a lead in the memo */
static void
memo_keep_client(HistoryMemo *memo, const LeadInput *src)
{
	MemoryContext old = MemoryContextSwitchTo(MemoContext);

	lead_client_copy(&memo->client, src);
	MemoryContextSwitchTo(old);
}

/*
 * Reads the client's row (has_client if there is one).  The lead trigger
 * goes through the backend's copy of the clients (client_cache.c): it
 * accepts the invalidations others sent, and on a miss reads with a
 * snapshot taken after them and keeps what it found.  Anything else, and
 * the trigger in a parallel operation, which may not take a snapshot,
 * reads with the command's snapshot.
 */
static void
read_client_now(LeadInput *lead, int64 client_id, bool cached)
{
	Snapshot	snapshot;

	cached = cached && !IsInParallelMode();
	if (cached)
	{
		AcceptInvalidationMessages();
		if (client_cache_get(client_id, lead))
			return;
	}
	snapshot = RegisterSnapshot(cached ? GetLatestSnapshot() :
								GetActiveSnapshot());
	read_client(lead, client_id, snapshot);
	UnregisterSnapshot(snapshot);
	if (cached)
		client_cache_put(Rels.client, client_id, lead);
}

/*
 * Fills the client part of a lead: the client's attributes (has_client
 * stays false when scoring.client has no such row), and its history before
 * created_at, counted by client_id whether the client is known or not, as
 * train() counts it.  The attributes are those the current statement sees,
 * or for the lead trigger (trigger) the backend's copy of them, which is
 * as current.  The history is read with SnapshotSelf, so that a bulk
 * import counts the leads it inserted a moment before, as train() and
 * explain() later will; it also counts what others committed meanwhile,
 * which is only more current.
 * insert: the lead trigger's insert, read through the command's memo;
 * NULL for anything else.
 */
void
lead_input_from_client(LeadInput *lead, int64 client_id, TimestampTz created_at,
					   const InsertedLead *insert, bool trigger)
{
	HistoryMemo *memo;
	bool		found;
	/* a later trigger could move a lead from where the memo would look */
	bool		use_memo = insert != NULL && insert->last_trigger;

	if (!Rels.valid)
		client_rels_resolve();

	/* a single-row insert needs no memo: it starts with a command's second lead */
	if (use_memo)
	{
		CommandId	command = GetCurrentCommandId(false);

		if (Memo == NULL || MemoCommand != command)
			use_memo = command == LastCommand;
		LastCommand = command;
	}
	if (!use_memo)
	{
		read_client_now(lead, client_id, trigger);
		if (insert != NULL && may_keep_history(insert->rel))
			read_history_kept(insert->rel, client_id, created_at,
							  &lead->prior_leads, &lead->prior_wins);
		else
			walk_history(insert != NULL ? insert->rel : NULL, client_id,
						 DT_NOBEGIN, created_at,
						 &lead->prior_leads, &lead->prior_wins, NULL, NULL, NULL);
		return;
	}

	memo = memo_entry(client_id, insert, &found);
	if (!found)
	{
		LeadInput	client;

		memset(&client, 0, sizeof(client));
		client.client_core = -1;
		memo->walked = false;
		memo->pending = (Closings) {NULL, 0, 0, MemoContext};
		memo->ahead = NULL;
		memo->next = memo->nahead = memo->cap = 0;
		read_client_now(&client, client_id, true);
		memo_keep_client(memo, &client);
	}
	/* the memo outlives this lead: its strings can be shared */
	lead->has_client = memo->client.has_client;
	lead->client_kind = memo->client.client_kind;
	lead->client_industry = memo->client.client_industry;
	lead->client_okved = memo->client.client_okved;
	lead->client_core = memo->client.client_core;
	lead->client_turnover = memo->client.client_turnover;
	read_history_memo(lead, memo, created_at);
}

/*
 * The lead trigger passes an inserted lead on: a trusted memo counts it as
 * stored, and its client's later leads count it from what the memo keeps.
 * Called for every lead the trigger inserts, after its client was read.
 */
void
client_history_passed(const InsertedLead *insert)
{
	MemoSlot   *slot;
	HistoryMemo *memo;

	if (Memo == NULL || !MemoTrusted ||
		MemoCommand != GetCurrentCommandId(false))
		return;
	MemoPassed++;
	if (!insert->has_client_id)
		return;
	slot = memo_lookup(Memo, insert->client_id);
	if (slot == NULL || !slot->memo->walked)
		return;
	memo = slot->memo;

	/*
	 * Its moment is the memo's last one, which no lead still ahead comes
	 * before: it goes first among them.
	 */
	Assert(insert->created_at == memo->last_at);
	if (memo->next == 0)
	{
		ahead_append(memo, 0, 0);
		memmove(&memo->ahead[1], &memo->ahead[0],
				sizeof(AheadLead) * (memo->nahead - 1));
		memo->next = 1;
	}
	memo->next--;
	memo->ahead[memo->next].created_at = insert->created_at;
	memo->ahead[memo->next].won_at = insert->won_at;
}
