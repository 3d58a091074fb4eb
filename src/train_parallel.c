/*-------------------------------------------------------------------------
 *
 * train_parallel.c
 *		The pass of scoring.train() over the leads, split in two halves of
 *		the table, the second read by a parallel worker.
 *
 * Reading the leads is half of train(), and one process reads them one
 * after another.  So the table is cut in two halves of its blocks: this
 * backend reads the first while a parallel worker (access/parallel.h, as
 * parallel index builds use) reads the second into a trainer of its own
 * and sends what it read through a shared memory queue: its tokens with
 * their counts and moments, its segments, its leads and their entries.
 * This backend takes them in after its own half (merge_tokens() and the
 * rest, in train.c).
 *
 * The model must not depend on whether a worker could be had, so the
 * halves are always read apart and merged the same way: without a worker
 * (max_parallel_maintenance_workers = 0, a small table, no free worker
 * slot) this backend reads the second half into a second trainer itself.
 * Both halves are read in block order, with synchronized and parallel
 * scans off, so the same table gives the same model every time.
 *
 * IDENTIFICATION
 *		src/train_parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "train.h"

/* Keys of the worker's shared memory */
#define TRAIN_KEY_TASK		UINT64CONST(0x5C0121B100000001)
#define TRAIN_KEY_QUEUE		UINT64CONST(0x5C0121B100000002)

/* The queue the worker's half comes through, and its messages' sizes */
#define TRAIN_QUEUE_SIZE	((Size) 4 * 1024 * 1024)
#define TOKENS_PER_MESSAGE	256
#define ROWS_PER_MESSAGE	16384
#define RAW_PER_MESSAGE		65536

/* What the worker is asked to read */
typedef struct TrainTask
{
	TimestampTz since;
	TimestampTz until;
	BlockNumber first;			/* of the worker's half, to the table's end */
	TrainOptions opt;
} TrainTask;

/* The first message of the worker: the sizes of what follows */
typedef struct PartHeader
{
	int32		ntokens;
	int32		nsegments;
	int64		nrows;
	int64		nraw;
} PartHeader;

PGDLLEXPORT void scoring_train_worker(dsm_segment *seg, shm_toc *toc);

/* ----------------------------------------------------------------
 * Sending and receiving a half
 * ----------------------------------------------------------------
 */

static void
send_message(shm_mq_handle *mqh, const void *data, Size len)
{
	shm_mq_result res;

#if PG_VERSION_NUM >= 150000
	res = shm_mq_send(mqh, len, data, false, true);
#else
	res = shm_mq_send(mqh, len, data, false);
#endif
	if (res != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not send the leads read to the training backend")));
}

/*
 * Appends items[0..n) of a string array to buf, each with its '\0'.
 */
static void
append_strings(StringInfo buf, char *const *items, int32 n)
{
	int32		i;

	for (i = 0; i < n; i++)
		appendBinaryStringInfo(buf, items[i], strlen(items[i]) + 1);
}

/*
 * Sends what a trainer read: the header; the tokens, a piece at a time,
 * each piece its Token structs followed by their names and fields; the
 * segments' names; the leads and their entries, in pieces.
 */
static void
send_part(shm_mq_handle *mqh, Trainer *tr)
{
	PartHeader	h;
	StringInfoData buf;
	int64		i;

	h.ntokens = tr->ntokens;
	h.nsegments = tr->nsegments;
	h.nrows = tr->nrows;
	h.nraw = tr->nraw;
	send_message(mqh, &h, sizeof(h));

	initStringInfo(&buf);
	for (i = 0; i < tr->ntokens; i += TOKENS_PER_MESSAGE)
	{
		int32		n = Min(TOKENS_PER_MESSAGE, tr->ntokens - i);
		int32		j;

		resetStringInfo(&buf);
		appendBinaryStringInfo(&buf, (char *) (tr->tokens + i), sizeof(Token) * n);
		for (j = 0; j < n; j++)
		{
			Token	   *t = &tr->tokens[i + j];

			appendBinaryStringInfo(&buf, t->name, strlen(t->name) + 1);
			appendBinaryStringInfo(&buf, t->field, strlen(t->field) + 1);
		}
		send_message(mqh, buf.data, buf.len);
	}
	resetStringInfo(&buf);
	append_strings(&buf, tr->segments, tr->nsegments);
	send_message(mqh, buf.data, buf.len);
	pfree(buf.data);

	for (i = 0; i < tr->nrows; i += ROWS_PER_MESSAGE)
		send_message(mqh, tr->rows + i,
					 sizeof(LeadRow) * Min(ROWS_PER_MESSAGE, tr->nrows - i));
	for (i = 0; i < tr->nraw; i += RAW_PER_MESSAGE)
		send_message(mqh, tr->raw + i,
					 sizeof(RawEntry) * Min(RAW_PER_MESSAGE, tr->nraw - i));
}

/* The next message from the worker, NULL when the worker has gone */
static char *
receive_message(shm_mq_handle *mqh, Size *len)
{
	void	   *data;

	if (shm_mq_receive(mqh, len, &data, false) != SHM_MQ_SUCCESS)
		return NULL;
	return data;
}

/* Complains about a message that is not what the worker should send */
static void
malformed(const char *what)
{
	elog(ERROR, "malformed %s from the parallel worker of train()", what);
}

/*
 * Points names[0..n) at the '\0'-terminated strings that fill p..end;
 * returns where they end.
 */
static const char *
take_strings(const char *p, const char *end, char **names, int32 n)
{
	int32		i;

	for (i = 0; i < n; i++)
	{
		const char *z = memchr(p, '\0', end - p);

		if (z == NULL)
			malformed("names");
		names[i] = (char *) p;
		p = z + 1;
	}
	return p;
}

/*
 * Takes in a piece of n tokens; their place here goes to map.  Returns
 * false when the worker has gone.
 */
static bool
receive_tokens(shm_mq_handle *mqh, Trainer *tr, int32 n, int32 *map)
{
	Size		len;
	char	   *data = receive_message(mqh, &len);
	Token	   *tokens;
	char	  **names;
	int32		i;

	if (data == NULL)
		return false;
	if (len < sizeof(Token) * n)
		malformed("tokens");
	/* a copy, for the Token structs' alignment */
	data = memcpy(palloc(len), data, len);
	tokens = (Token *) data;
	names = palloc(sizeof(char *) * 2 * n);
	if (take_strings(data + sizeof(Token) * n, data + len, names, 2 * n) != data + len)
		malformed("tokens");
	for (i = 0; i < n; i++)
	{
		tokens[i].name = names[2 * i];
		tokens[i].field = names[2 * i + 1];
	}
	merge_tokens(tr, tokens, n, map);
	pfree(names);
	pfree(data);
	return true;
}

/*
 * Takes in the half the worker read, after this backend's own.  Returns
 * false when the worker went away before it was all sent (its error, if
 * it had one, is raised by WaitForParallelWorkersToFinish()).
 */
static bool
receive_part(shm_mq_handle *mqh, Trainer *tr)
{
	PartHeader	h;
	char	   *data;
	Size		len;
	char	  **segments;
	int32	   *tokmap,
			   *segmap;
	int64		raw_base = tr->nraw;
	int64		got;

	if ((data = receive_message(mqh, &len)) == NULL)
		return false;
	if (len != sizeof(h))
		malformed("header");
	memcpy(&h, data, sizeof(h));

	tokmap = palloc_extended(sizeof(int32) * Max(h.ntokens, 1), MCXT_ALLOC_HUGE);
	for (got = 0; got < h.ntokens; got += TOKENS_PER_MESSAGE)
		if (!receive_tokens(mqh, tr, Min(TOKENS_PER_MESSAGE, h.ntokens - got),
							tokmap + got))
			return false;

	if ((data = receive_message(mqh, &len)) == NULL)
		return false;
	segments = palloc(sizeof(char *) * Max(h.nsegments, 1));
	segmap = palloc(sizeof(int32) * Max(h.nsegments, 1));
	if (take_strings(data, data + len, segments, h.nsegments) != data + len)
		malformed("segments");
	merge_segments(tr, segments, h.nsegments, segmap);
	pfree(segments);

	for (got = 0; got < h.nrows; got += len / sizeof(LeadRow))
	{
		if ((data = receive_message(mqh, &len)) == NULL)
			return false;
		if (len == 0 || len % sizeof(LeadRow) != 0 || len / sizeof(LeadRow) > h.nrows - got)
			malformed("leads");
		append_rows(tr, (LeadRow *) data, len / sizeof(LeadRow), raw_base, segmap);
	}
	for (got = 0; got < h.nraw; got += len / sizeof(RawEntry))
	{
		if ((data = receive_message(mqh, &len)) == NULL)
			return false;
		if (len == 0 || len % sizeof(RawEntry) != 0 || len / sizeof(RawEntry) > h.nraw - got)
			malformed("entries");
		append_raw(tr, (RawEntry *) data, len / sizeof(RawEntry), tokmap);
	}
	pfree(tokmap);
	pfree(segmap);
	return true;
}

/* Takes in the half another trainer of this backend read */
static void
merge_part(Trainer *tr, Trainer *other)
{
	int32	   *tokmap = palloc_extended(sizeof(int32) * Max(other->ntokens, 1),
										 MCXT_ALLOC_HUGE);
	int32	   *segmap = palloc(sizeof(int32) * Max(other->nsegments, 1));

	merge_tokens(tr, other->tokens, other->ntokens, tokmap);
	merge_segments(tr, other->segments, other->nsegments, segmap);
	append_rows(tr, other->rows, other->nrows, tr->nraw, segmap);
	append_raw(tr, other->raw, other->nraw, tokmap);
	pfree(tokmap);
	pfree(segmap);
}

/* ----------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------
 */

/*
 * Entry point of the parallel worker: reads the second half of the table
 * as the leader would and sends it.  It runs in the leader's transaction,
 * with its snapshot and settings.
 */
void
scoring_train_worker(dsm_segment *seg, shm_toc *toc)
{
	TrainTask  *task = shm_toc_lookup(toc, TRAIN_KEY_TASK, false);
	shm_mq	   *mq = shm_toc_lookup(toc, TRAIN_KEY_QUEUE, false);
	shm_mq_handle *mqh;
	Trainer    *tr;

	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);

	tr = trainer_create(NULL);
	tr->opt = task->opt;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(tr->cxt);
	trainer_set_config(tr, scoring_config());
	tr->histories = read_histories(tr->cxt, task->since, task->until);
	read_training_part(tr, task->since, task->until, task->first, MaxBlockNumber);
	send_part(mqh, tr);
	SPI_finish();
	shm_mq_detach(mqh);
}

/* ----------------------------------------------------------------
 * The pass
 * ----------------------------------------------------------------
 */

/* The number of blocks of scoring.lead now */
static BlockNumber
lead_blocks(void)
{
	Relation	rel = table_openrv(makeRangeVar("scoring", "lead", -1),
								   AccessShareLock);
	BlockNumber n = RelationGetNumberOfBlocks(rel);

	table_close(rel, AccessShareLock);
	return n;
}

/*
 * Starts a worker on blocks first.. of the table; NULL when none could be
 * had (none allowed, or no free slot).  The worker's messages come
 * through *mqh.
 */
static ParallelContext *
start_worker(TrainTask *task, shm_mq_handle **mqh)
{
	ParallelContext *pcxt;
	TrainTask  *shared;
	shm_mq	   *mq;

	pcxt = CreateParallelContext("scoring", "scoring_train_worker", 1);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(TrainTask));
	shm_toc_estimate_chunk(&pcxt->estimator, TRAIN_QUEUE_SIZE);
	shm_toc_estimate_keys(&pcxt->estimator, 2);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory to be had */
		DestroyParallelContext(pcxt);
		return NULL;
	}

	shared = shm_toc_allocate(pcxt->toc, sizeof(TrainTask));
	*shared = *task;
	shm_toc_insert(pcxt->toc, TRAIN_KEY_TASK, shared);
	mq = shm_mq_create(shm_toc_allocate(pcxt->toc, TRAIN_QUEUE_SIZE),
					   TRAIN_QUEUE_SIZE);
	shm_toc_insert(pcxt->toc, TRAIN_KEY_QUEUE, mq);
	shm_mq_set_receiver(mq, MyProc);
	*mqh = shm_mq_attach(mq, pcxt->seg, NULL);

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0)
	{
		shm_mq_detach(*mqh);
		DestroyParallelContext(pcxt);
		return NULL;
	}
	shm_mq_set_handle(*mqh, pcxt->worker[0].bgwhandle);
	return pcxt;
}

/*
 * Reads every lead closed as won or lost created in [since, until), with
 * its client and its history, into tr; config gives the margins of the
 * potential profits.  The first half of the table's blocks is read here;
 * the second by a parallel worker when the table is large enough and one
 * can be had, by a second trainer here otherwise (see the top of the
 * file).
 */
void
read_training_data(Trainer *tr, TimestampTz since, TimestampTz until,
				   ScoringConfig *config)
{
	BlockNumber nblocks = lead_blocks();
	TrainTask	task;
	ParallelContext *pcxt = NULL;
	shm_mq_handle *mqh = NULL;
	int			nestlevel;

	task.since = since;
	task.until = until;
	task.first = nblocks / 2;
	task.opt = tr->opt;

	/*
	 * The order the leads come in decides the order of the columns, the
	 * sample the ranges of numbers are cut from and how the sums round.  A
	 * synchronized scan of a large table starts wherever another scan of
	 * it left off, and a parallel one interleaves its workers' rows as
	 * they come, so the same leads would give a slightly different model
	 * from one call to the next: each half is read from its first block,
	 * in one process (as pg_dump does for a stable order of rows).  The
	 * sample is drawn by lead_id besides (lead_draw), for a table stored
	 * in another order.  The worker takes these settings with it.
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("max_parallel_workers_per_gather", "0", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	trainer_set_config(tr, config);
	if (max_parallel_maintenance_workers > 0 &&
		task.first >= (BlockNumber) min_parallel_table_scan_size)
	{
		EnterParallelMode();
		pcxt = start_worker(&task, &mqh);
		if (pcxt == NULL)
			ExitParallelMode();
	}

	tr->histories = read_histories(tr->cxt, since, until);
	if (task.first > 0)
		read_training_part(tr, since, until, 0, task.first - 1);

	tr->workers = pcxt != NULL ? 1 : 0;
	if (pcxt != NULL)
	{
		bool		complete = receive_part(mqh, tr);

		/* raises the worker's error, if it had one */
		WaitForParallelWorkersToFinish(pcxt);
		if (!complete)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("the parallel worker of train() stopped before it sent all its leads")));
		DestroyParallelContext(pcxt);
		ExitParallelMode();
	}
	else
	{
		Trainer    *other = trainer_create(NULL);

		other->opt = tr->opt;
		trainer_set_config(other, config);
		other->histories = tr->histories;
		read_training_part(other, since, until, task.first, MaxBlockNumber);
		merge_part(tr, other);
		MemoryContextDelete(other->cxt);
	}
	AtEOXact_GUC(true, nestlevel);
}
