/*-------------------------------------------------------------------------
 *
 * train_parallel.c
 *		The parallel worker of scoring.train(): it reads the second half of
 *		the table's blocks, then sums half of the patterns in the fits.
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
 * The worker then stays for the fits: it takes a copy of the second part
 * of the patterns (fit.h: Patterns.split) and, each time the fit needs
 * the objective's gradient or the Hessian at a point, sums its part while
 * this backend sums the first, through a second queue the other way.
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
#define TRAIN_KEY_ORDERS	UINT64CONST(0x5C0121B100000003)

/*
 * The queues: the worker's half and sums come through one, the patterns
 * and the points to sum at go the other way; and their messages' sizes
 */
#define TRAIN_QUEUE_SIZE	((Size) 1024 * 1024)
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

/* What the backend asks of the worker after the leads */
typedef enum OrderKind
{
	ORDER_PATTERNS,				/* take these patterns */
	ORDER_SUM,					/* sum them at this point */
	ORDER_DONE					/* nothing more */
} OrderKind;

typedef struct Order
{
	OrderKind	kind;
	PatternSum	what;			/* ORDER_SUM: which sum, at the point that
								 * follows (ncols doubles) */
	int			fold;
	int			ncols;
	int64		npatterns;		/* ORDER_PATTERNS: what follows */
	int64		ncells;
} Order;

/* The parallel section of a train() call, from its reading to its fits */
struct TrainParallel
{
	ParallelContext *pcxt;		/* NULL: no worker */
	shm_mq_handle *from_worker;
	shm_mq_handle *to_worker;
	PatternHelper helper;
	int			ncols;
	int			nestlevel;		/* of the settings made for the reading */
};

PGDLLEXPORT void scoring_train_worker(dsm_segment *seg, shm_toc *toc);

/* ----------------------------------------------------------------
 * Messages between the backend and the worker
 * ----------------------------------------------------------------
 */

/* Sends one message; false when the other side has gone */
static bool
try_send(shm_mq_handle *mqh, const void *data, Size len)
{
#if PG_VERSION_NUM >= 150000
	return shm_mq_send(mqh, len, data, false, true) == SHM_MQ_SUCCESS;
#else
	return shm_mq_send(mqh, len, data, false) == SHM_MQ_SUCCESS;
#endif
}

/* Sends one message from the worker to the backend */
static void
send_message(shm_mq_handle *mqh, const void *data, Size len)
{
	if (!try_send(mqh, data, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the backend running train() has gone")));
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

/* Complains about a message that is not what the other side should send */
static void
malformed(const char *what)
{
	elog(ERROR, "malformed %s between train() and its parallel worker", what);
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

/* Bytes sent in one message when an array goes in pieces */
#define PIECE_SIZE	((Size) 256 * 1024)

/*
 * Fills n bytes at dst from as many messages as they came in; false when
 * the other side has gone
 */
static bool
receive_into(shm_mq_handle *mqh, void *dst, Size n)
{
	Size		got = 0;

	while (got < n)
	{
		Size		len;
		char	   *data = receive_message(mqh, &len);

		if (data == NULL)
			return false;
		if (len > n - got)
			malformed("patterns");
		memcpy((char *) dst + got, data, len);
		got += len;
	}
	return true;
}

/* Sends n bytes from src in pieces; false when the other side has gone */
static bool
send_pieces(shm_mq_handle *mqh, const void *src, Size n)
{
	Size		off;

	for (off = 0; off < n; off += PIECE_SIZE)
		if (!try_send(mqh, (const char *) src + off, Min(PIECE_SIZE, n - off)))
			return false;
	return true;
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

/* Receives the patterns of an ORDER_PATTERNS into pt; false when gone */
static bool
receive_patterns(shm_mq_handle *orders, const Order *o, Patterns *pt)
{
	int64		m = o->npatterns;

	memset(pt, 0, sizeof(Patterns));
	pt->ncols = o->ncols;
	pt->npatterns = m;
	pt->start = palloc_extended(sizeof(int64) * (m + 1), MCXT_ALLOC_HUGE);
	pt->n = palloc_extended(sizeof(double) * Max(m, 1), MCXT_ALLOC_HUGE);
	pt->y = palloc_extended(sizeof(double) * Max(m, 1), MCXT_ALLOC_HUGE);
	pt->fold = palloc_extended(Max(m, 1), MCXT_ALLOC_HUGE);
	pt->cells = palloc_extended(sizeof(PatternCell) * Max(o->ncells, 1),
								MCXT_ALLOC_HUGE);
	return receive_into(orders, pt->start, sizeof(int64) * (m + 1)) &&
		receive_into(orders, pt->n, sizeof(double) * m) &&
		receive_into(orders, pt->y, sizeof(double) * m) &&
		receive_into(orders, pt->fold, m) &&
		receive_into(orders, pt->cells, sizeof(PatternCell) * o->ncells);
}

/*
 * The worker's part in the fits: takes its patterns, then sums them at
 * each point it is sent, until it is told it is done or the backend goes.
 */
static void
serve_sums(shm_mq_handle *orders, shm_mq_handle *results)
{
	Patterns	pt;

	memset(&pt, 0, sizeof(pt));
	for (;;)
	{
		Size		len;
		char	   *data = receive_message(orders, &len);
		Order		o;
		double	   *beta,
				   *out;
		Size		size;

		if (data == NULL)
			return;				/* the backend has gone */
		if (len < sizeof(Order))
			malformed("order");
		memcpy(&o, data, sizeof(Order));
		switch (o.kind)
		{
			case ORDER_PATTERNS:
				if (!receive_patterns(orders, &o, &pt))
					return;
				break;
			case ORDER_SUM:
				if (o.ncols != pt.ncols ||
					len != sizeof(Order) + sizeof(double) * o.ncols)
					malformed("order");
				beta = palloc(sizeof(double) * o.ncols);
				memcpy(beta, data + sizeof(Order), sizeof(double) * o.ncols);
				size = pattern_sum_size(pt.ncols, o.what);
				out = palloc_extended(sizeof(double) * size, MCXT_ALLOC_HUGE);
				pattern_sum(&pt, o.what, 0, pt.npatterns, o.fold, beta, out);
				send_message(results, out, sizeof(double) * size);
				pfree(out);
				pfree(beta);
				break;
			case ORDER_DONE:
				return;
		}
	}
}

/*
 * Entry point of the parallel worker: reads the second half of the table
 * as the backend would and sends it, then helps with the fits.  It runs
 * in the backend's transaction, with its snapshot and settings.
 */
void
scoring_train_worker(dsm_segment *seg, shm_toc *toc)
{
	TrainTask  *task = shm_toc_lookup(toc, TRAIN_KEY_TASK, false);
	shm_mq	   *mq = shm_toc_lookup(toc, TRAIN_KEY_QUEUE, false);
	shm_mq	   *orders_mq = shm_toc_lookup(toc, TRAIN_KEY_ORDERS, false);
	shm_mq_handle *mqh;
	shm_mq_handle *orders;
	Trainer    *tr;
	MemoryContext cxt;

	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);
	shm_mq_set_receiver(orders_mq, MyProc);
	orders = shm_mq_attach(orders_mq, seg, NULL);

	tr = trainer_create(NULL);
	cxt = tr->cxt;
	tr->opt = task->opt;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);
	trainer_set_config(tr, scoring_config());
	tr->histories = read_histories(cxt, task->since, task->until);
	read_training_part(tr, task->since, task->until, task->first, MaxBlockNumber);
	send_part(mqh, tr);
	SPI_finish();
	MemoryContextDelete(cxt);	/* its leads are the backend's now */

	serve_sums(orders, mqh);
	shm_mq_detach(orders);
	shm_mq_detach(mqh);
}

/* ----------------------------------------------------------------
 * The backend's side: the reading, the helper of the fits, the end
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
 * Starts a worker on blocks first.. of the table into par; false when
 * none could be had (no dynamic shared memory, or no free slot).
 */
static bool
start_worker(TrainTask *task, TrainParallel *par)
{
	ParallelContext *pcxt;
	TrainTask  *shared;
	shm_mq	   *from,
			   *to;

	pcxt = CreateParallelContext("scoring", "scoring_train_worker", 1);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(TrainTask));
	shm_toc_estimate_chunk(&pcxt->estimator, TRAIN_QUEUE_SIZE);
	shm_toc_estimate_chunk(&pcxt->estimator, TRAIN_QUEUE_SIZE);
	shm_toc_estimate_keys(&pcxt->estimator, 3);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		DestroyParallelContext(pcxt);
		return false;
	}

	shared = shm_toc_allocate(pcxt->toc, sizeof(TrainTask));
	*shared = *task;
	shm_toc_insert(pcxt->toc, TRAIN_KEY_TASK, shared);
	from = shm_mq_create(shm_toc_allocate(pcxt->toc, TRAIN_QUEUE_SIZE),
						 TRAIN_QUEUE_SIZE);
	shm_toc_insert(pcxt->toc, TRAIN_KEY_QUEUE, from);
	shm_mq_set_receiver(from, MyProc);
	to = shm_mq_create(shm_toc_allocate(pcxt->toc, TRAIN_QUEUE_SIZE),
					   TRAIN_QUEUE_SIZE);
	shm_toc_insert(pcxt->toc, TRAIN_KEY_ORDERS, to);
	shm_mq_set_sender(to, MyProc);
	par->from_worker = shm_mq_attach(from, pcxt->seg, NULL);
	par->to_worker = shm_mq_attach(to, pcxt->seg, NULL);

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0)
	{
		shm_mq_detach(par->from_worker);
		shm_mq_detach(par->to_worker);
		DestroyParallelContext(pcxt);
		return false;
	}
	shm_mq_set_handle(par->from_worker, pcxt->worker[0].bgwhandle);
	shm_mq_set_handle(par->to_worker, pcxt->worker[0].bgwhandle);
	par->pcxt = pcxt;
	return true;
}

/*
 * The worker has gone before it was done: its error if it had one (which
 * WaitForParallelWorkersToFinish() raises), else this one.
 */
static void
worker_gone(TrainParallel *par)
{
	WaitForParallelWorkersToFinish(par->pcxt);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("the parallel worker of train() stopped before it was done")));
}

/*
 * Reads every lead closed as won or lost created in [since, until), with
 * its client and its history, into tr; config gives the margins of the
 * potential profits.  The first half of the table's blocks is read here;
 * the second by a parallel worker when the table is large enough and one
 * can be had, by a second trainer here otherwise (see the top of the
 * file).  This opens the parallel section of the call: end_parallel()
 * closes it.
 */
void
read_training_data(Trainer *tr, TimestampTz since, TimestampTz until,
				   ScoringConfig *config)
{
	BlockNumber nblocks = lead_blocks();
	TrainTask	task;
	TrainParallel *par = MemoryContextAllocZero(tr->cxt, sizeof(TrainParallel));

	task.since = since;
	task.until = until;
	task.first = nblocks / 2;
	task.opt = tr->opt;
	tr->parallel = par;

	/*
	 * The order the leads come in decides the order of the columns, the
	 * sample the ranges of numbers are cut from and how the sums round.  A
	 * synchronized scan of a large table starts wherever another scan of
	 * it left off, and a parallel one interleaves its workers' rows as
	 * they come, so the same leads would give a slightly different model
	 * from one call to the next: each half is read from its first block,
	 * in one process (as pg_dump does for a stable order of rows).  The
	 * sample is drawn by lead_id besides (lead_draw), for a table stored
	 * in another order.  The worker takes these settings with it; they
	 * hold until end_parallel().
	 */
	par->nestlevel = NewGUCNestLevel();
	(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("max_parallel_workers_per_gather", "0", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	trainer_set_config(tr, config);
	if (max_parallel_maintenance_workers > 0 &&
		task.first >= (BlockNumber) min_parallel_table_scan_size)
	{
		EnterParallelMode();
		if (!start_worker(&task, par))
			ExitParallelMode();
	}

	tr->histories = read_histories(tr->cxt, since, until);
	if (task.first > 0)
		read_training_part(tr, since, until, 0, task.first - 1);

	tr->workers = par->pcxt != NULL ? 1 : 0;
	if (par->pcxt != NULL)
	{
		if (!receive_part(par->from_worker, tr))
			worker_gone(par);
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
}

/* Helper: sends the worker the point to sum its patterns at */
static void
helper_start(void *arg, PatternSum what, int fold, const double *beta)
{
	TrainParallel *par = (TrainParallel *) arg;
	Size		len = sizeof(Order) + sizeof(double) * par->ncols;
	char	   *msg = palloc0(len);
	Order	   *o = (Order *) msg;

	o->kind = ORDER_SUM;
	o->what = what;
	o->fold = fold;
	o->ncols = par->ncols;
	memcpy(msg + sizeof(Order), beta, sizeof(double) * par->ncols);
	if (!try_send(par->to_worker, msg, len))
		worker_gone(par);
	pfree(msg);
}

/* Helper: takes the worker's sum */
static void
helper_finish(void *arg, PatternSum what, double *out)
{
	TrainParallel *par = (TrainParallel *) arg;
	Size		expect = sizeof(double) * pattern_sum_size(par->ncols, what);
	Size		len;
	char	   *data = receive_message(par->from_worker, &len);

	if (data == NULL)
		worker_gone(par);
	if (len != expect)
		malformed("sums");
	memcpy(out, data, len);
}

/*
 * Hands the worker, if there is one, a copy of the patterns from
 * tr->pt.split on, and makes it the patterns' helper for the fits.
 */
void
share_patterns(Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	Patterns   *pt = &tr->pt;
	int64		m = pt->npatterns - pt->split,
				base = pt->start[pt->split],
				i;
	int64	   *start;
	Order		o;

	if (par == NULL || par->pcxt == NULL)
		return;
	memset(&o, 0, sizeof(o));
	o.kind = ORDER_PATTERNS;
	o.ncols = pt->ncols;
	o.npatterns = m;
	o.ncells = pt->start[pt->npatterns] - base;
	start = palloc_extended(sizeof(int64) * (m + 1), MCXT_ALLOC_HUGE);
	for (i = 0; i <= m; i++)
		start[i] = pt->start[pt->split + i] - base;
	if (!try_send(par->to_worker, &o, sizeof(o)) ||
		!send_pieces(par->to_worker, start, sizeof(int64) * (m + 1)) ||
		!send_pieces(par->to_worker, pt->n + pt->split, sizeof(double) * m) ||
		!send_pieces(par->to_worker, pt->y + pt->split, sizeof(double) * m) ||
		!send_pieces(par->to_worker, pt->fold + pt->split, m) ||
		!send_pieces(par->to_worker, pt->cells + base, sizeof(PatternCell) * o.ncells))
		worker_gone(par);
	pfree(start);

	par->ncols = pt->ncols;
	par->helper.start = helper_start;
	par->helper.finish = helper_finish;
	par->helper.arg = par;
	pt->helper = &par->helper;
}

/*
 * Closes the parallel section read_training_data() opened: the worker is
 * told it is done and waited for, and the reading's settings are undone.
 * After this the call may write.
 */
void
end_parallel(Trainer *tr)
{
	TrainParallel *par = tr->parallel;

	if (par == NULL)
		return;
	tr->pt.helper = NULL;
	if (par->pcxt != NULL)
	{
		Order		o;

		memset(&o, 0, sizeof(o));
		o.kind = ORDER_DONE;
		if (!try_send(par->to_worker, &o, sizeof(o)))
			worker_gone(par);
		WaitForParallelWorkersToFinish(par->pcxt);
		DestroyParallelContext(par->pcxt);
		ExitParallelMode();
	}
	AtEOXact_GUC(true, par->nestlevel);
	tr->parallel = NULL;
}
