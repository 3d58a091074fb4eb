/*-------------------------------------------------------------------------
 *
 * client.c
 *		A lead's client and the client's history, read by direct index scans.
 *
 * Every lead with a client needs the client's attributes and how many of
 * its earlier leads there were and were won.  Going through SPI cost more
 * than the rest of scoring together, so the trigger reads the client by
 * its primary key and walks the client's leads in lead_client_history_idx
 * (client_id, created_at) INCLUDE (status, closed_at) itself, just as the
 * equivalent query would:
 *
 *		SELECT count(*),
 *			   count(*) FILTER (WHERE status = 'won' AND closed_at <= $2)
 *		  FROM scoring.lead WHERE client_id = $1 AND created_at < $2
 *
 * train.c runs exactly that query, so training and scoring agree.
 *
 * IDENTIFICATION
 *		src/client.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "scoring.h"

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
	AttrNumber	status;
	AttrNumber	closed_at;
} ClientRels;

static ClientRels Rels;

/* Forgets the lookups when one of the relations changes */
static void
client_rels_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Rels.client ||
		relid == Rels.client_pkey || relid == Rels.lead ||
		relid == Rels.lead_history)
		Rels.valid = false;
}

/* Registers the invalidation callback; called from _PG_init */
void
client_init(void)
{
	CacheRegisterRelcacheCallback(client_rels_invalidate, (Datum) 0);
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
	Rels.status = column(Rels.lead, "status");
	Rels.closed_at = column(Rels.lead, "closed_at");
	Rels.valid = true;
}

/* A text attribute of a slot as a C string, NULL when SQL NULL */
static const char *
slot_text(TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Reads the client's row; false when there is none */
static bool
read_client(LeadInput *lead, int64 client_id, Snapshot snapshot)
{
	Relation	rel = table_open(Rels.client, AccessShareLock);
	Relation	idx = index_open(Rels.client_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan = index_beginscan(rel, idx, snapshot, 1, 0);
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(client_id));
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
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
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/* Whether a status datum is 'won', without copying it */
static bool
is_won(Datum status)
{
	text	   *t = DatumGetTextPP(status);

	return VARSIZE_ANY_EXHDR(t) == 3 && memcmp(VARDATA_ANY(t), "won", 3) == 0;
}

/* Positions of the INCLUDE columns in lead_client_history_idx */
#define HISTORY_IDX_STATUS		3
#define HISTORY_IDX_CLOSED_AT	4

/*
 * Counts the client's leads created before created_at, and the won ones.
 * Like an index-only scan, it reads status and closed_at from the index
 * where the visibility map says the heap page is all visible.
 */
static void
read_history(LeadInput *lead, int64 client_id, TimestampTz created_at,
			 Snapshot snapshot)
{
	Relation	rel = table_open(Rels.lead, AccessShareLock);
	Relation	idx = index_open(Rels.lead_history, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan = index_beginscan(rel, idx, snapshot, 2, 0);
	Buffer		vmbuffer = InvalidBuffer;
	ScanKeyData keys[2];
	ItemPointer tid;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(client_id));
	ScanKeyInit(&keys[1], 2, BTLessStrategyNumber, F_TIMESTAMPTZ_LT,
				TimestampTzGetDatum(created_at));
	scan->xs_want_itup = true;
	index_rescan(scan, keys, 2, NULL, 0);

	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		bool		status_null,
					closed_null;
		Datum		status,
					closed_at;

		if (VM_ALL_VISIBLE(rel, ItemPointerGetBlockNumber(tid), &vmbuffer))
		{
			status = index_getattr(scan->xs_itup, HISTORY_IDX_STATUS,
								   scan->xs_itupdesc, &status_null);
			closed_at = index_getattr(scan->xs_itup, HISTORY_IDX_CLOSED_AT,
									  scan->xs_itupdesc, &closed_null);
		}
		else
		{
			if (!index_fetch_heap(scan, slot))
				continue;		/* not visible to this snapshot */
			status = slot_getattr(slot, Rels.status, &status_null);
			closed_at = slot_getattr(slot, Rels.closed_at, &closed_null);
		}

		lead->prior_leads++;
		if (!status_null && is_won(status) && !closed_null &&
			DatumGetTimestampTz(closed_at) <= created_at)
			lead->prior_wins++;
	}

	if (BufferIsValid(vmbuffer))
		ReleaseBuffer(vmbuffer);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/*
 * Fills the client part of a lead: the client's attributes as the current
 * statement sees them, and its history before created_at.  The history is
 * read with SnapshotSelf, so that a bulk import counts the leads it
 * inserted a moment before, as train() and explain() later will; it also
 * counts what others committed meanwhile, which is only more current.
 */
void
lead_input_from_client(LeadInput *lead, int64 client_id, TimestampTz created_at)
{
	Snapshot	snapshot;

	if (!Rels.valid)
		client_rels_resolve();

	snapshot = RegisterSnapshot(GetActiveSnapshot());
	if (read_client(lead, client_id, snapshot))
		read_history(lead, client_id, created_at, SnapshotSelf);
	UnregisterSnapshot(snapshot);
}
